"""The REST API over HTTP with a real Celery worker, on SQLite + filesystem broker and on
PostgreSQL + Redis."""

from __future__ import annotations

import hashlib
import io
import json
import time

import httpx
import pytest
import soundfile as sf

from tests.common.audio_files import silent, song
from tests.common.stack import new_voice, upload, wait_job


def test_health_reports_database_broker_and_workers(stack):
    r = httpx.get(f"{stack.url}/api/v1/health")
    assert r.status_code == 200
    h = r.json()
    assert h["status"] == "ok" and h["database"] == "ok" and h["broker"] == "ok"
    assert any(set(w["queues"].split(",")) == {"cpu", "gpu"} for w in h["workers"])
    # an anonymous caller learns nothing about the machines; a user sees the workers' names
    assert all(w["name"] is None and w["hostname"] is None for w in h["workers"])
    with stack.client("alice") as c:
        named = c.get("/api/v1/health").json()["workers"]
    assert named and all(w["name"] and w["hostname"] for w in named)


def test_auth_is_required_and_docs_are_served(stack):
    anon = stack.client()
    for path in ("/api/v1/voices", "/api/v1/jobs", "/api/v1/me", "/api/v1/conversions"):
        r = anon.get(path)
        assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
    bad = httpx.get(f"{stack.url}/api/v1/voices", headers={"Authorization": "Bearer svc_nope"})
    assert bad.status_code == 401
    assert anon.get("/docs").status_code == 200
    spec = anon.get("/api/v1/openapi.json").json()
    assert "/api/v1/voices/{voice_id}/tracks" in spec["paths"]
    assert "/api/v1/jobs/{job_id}/events" in spec["paths"]
    with stack.client("alice") as c:
        assert c.get("/api/v1/me").json()["name"] == "alice"


def test_cookie_login_for_the_browser(stack):
    c = stack.client()
    assert c.post("/api/v1/auth/login", json={"token": "svc_wrong-token"}).status_code == 401
    r = c.post("/api/v1/auth/login", json={"token": stack.tokens["bob"]})
    assert r.status_code == 200 and "httponly" in r.headers["set-cookie"].lower()
    assert c.get("/api/v1/me").json()["name"] == "bob"
    secret = c.cookies["svc_session"]
    assert stack.tokens["bob"] not in secret  # the cookie holds a session id, not the token
    # a change made with the cookie must say it comes from this site's pages
    assert c.post("/api/v1/voices", json={"name": "x"}).status_code == 403
    own = {"Origin": stack.url}
    r = c.post("/api/v1/voices", json={"name": "From the UI"}, headers=own)
    assert r.status_code == 201
    assert c.delete(f"/api/v1/voices/{r.json()['id']}", headers=own).status_code == 204
    assert c.post("/api/v1/auth/logout", headers=own).status_code == 204
    c.cookies.clear()
    assert c.get("/api/v1/me").status_code == 401
    c.cookies.set("svc_session", secret)  # a copy taken before the logout no longer works
    assert c.get("/api/v1/me").status_code == 401


def test_voice_crud(stack):
    with stack.client("alice") as c:
        v = new_voice(c, "Crud")
        assert v["status"] == "created" and v["tracks"] == []
        assert v["id"] in [x["id"] for x in c.get("/api/v1/voices").json()]
        r = c.patch(f"/api/v1/voices/{v['id']}", json={"name": "Renamed"})
        assert r.json()["name"] == "Renamed"
        assert c.post("/api/v1/voices", json={"name": ""}).status_code == 422
        assert c.delete(f"/api/v1/voices/{v['id']}").status_code == 204
        assert c.get(f"/api/v1/voices/{v['id']}").status_code == 404


def test_upload_ingest_and_ranged_download(stack, tmp_path):
    a = song(tmp_path / "take one.wav", seconds=2.5, sr=48000, channels=2, subtype="PCM_24")
    b = song(tmp_path / "take2.flac", seconds=1.5, sr=22050, channels=1)
    with stack.client("alice") as c:
        v = new_voice(c)
        r = upload(c, v["id"], [a, b])
        assert r.status_code == 201, r.text
        body = r.json()
        assert [t["filename"] for t in body["tracks"]] == ["take one.wav", "take2.flac"]
        assert body["tracks"][0]["sha256"] == hashlib.sha256(a.read_bytes()).hexdigest()
        job = wait_job(c, body["job"]["id"])
        assert job["status"] == "succeeded", job
        assert job["progress"] == 1.0 and job["kind"] == "ingest"
        tracks = c.get(f"/api/v1/voices/{v['id']}/tracks").json()
        assert [t["status"] for t in tracks] == ["ready", "ready"]
        meta = tracks[0]["meta"]
        assert meta["sample_rate"] == 48000 and meta["channels"] == 2
        assert meta["duration_s"] == pytest.approx(2.5, abs=0.01)
        assert meta["loudness_lufs"] is not None and meta["loudness_lufs"] < 0

        # the original, byte for byte
        orig = c.get(f"/api/v1/tracks/{tracks[0]['id']}/audio")
        assert orig.status_code == 200 and orig.content == a.read_bytes()
        # the decoded 44.1 kHz float WAV, and a byte range of it (players seek)
        dec = c.get(f"/api/v1/tracks/{tracks[1]['id']}/audio", params={"variant": "decoded"})
        assert dec.status_code == 200
        data, sr = sf.read(io.BytesIO(dec.content), always_2d=True)
        assert sr == 44100 and data.shape[1] == 1
        assert abs(data.shape[0] - round(1.5 * 44100)) <= 1
        arts = c.get(f"/api/v1/jobs/{job['id']}/artifacts").json()
        assert {x["kind"] for x in arts} == {"decoded"} and len(arts) == 2
        url = arts[0]["download_url"]
        full = c.get(url)
        assert full.status_code == 200
        assert hashlib.sha256(full.content).hexdigest() == arts[0]["sha256"]
        part = c.get(url, headers={"Range": "bytes=100-199"})
        assert part.status_code == 206
        assert part.headers["content-range"] == f"bytes 100-199/{arts[0]['size_bytes']}"
        assert part.content == full.content[100:200]


def test_bad_uploads_get_clear_errors_and_lose_nothing(stack, tmp_path):
    good = song(tmp_path / "good.wav", seconds=2.0)
    with stack.client("alice") as c:
        v = new_voice(c, "Bad inputs")
        r = upload(c, v["id"], [good])
        assert wait_job(c, r.json()["job"]["id"])["status"] == "succeeded"

        # refused at upload: not audio, empty, over the size limit, malformed requests
        r = upload(c, v["id"], [("notes.wav", b"this is not audio at all" * 10)])
        assert r.status_code == 415 and "notes.wav" in r.json()["detail"]
        r = upload(c, v["id"], [("empty.mp3", b"")])
        assert r.status_code == 400 and "empty" in r.json()["detail"]
        big = b"RIFF\x00\x00\x00\x00WAVE" + b"\x00" * (9 * 1024 * 1024)
        r = upload(c, v["id"], [("huge.wav", big)])
        assert r.status_code == 413 and "limit" in r.json()["detail"]
        r = c.post(
            f"/api/v1/voices/{v['id']}/tracks",
            content=b"x",
            headers={"content-type": "application/json"},
        )
        assert r.status_code == 400
        r = c.post(
            f"/api/v1/voices/{v['id']}/tracks",
            files=[("other", ("a.wav", good.read_bytes(), "audio/wav"))],
        )
        assert r.status_code == 400
        # nothing of the refused uploads was kept
        assert len(c.get(f"/api/v1/voices/{v['id']}/tracks").json()) == 1
        assert list((stack.data_dir / "storage" / ".tmp").iterdir()) == []

        # known only after decoding: a failed job with a plain message
        cases = {
            "silent": (silent(tmp_path / "quiet.wav"), "silent"),
            "short": (song(tmp_path / "blip.wav", seconds=0.2), "short"),
            "long": (song(tmp_path / "long.wav", seconds=125, sr=8000), "120"),
            "garbage": (
                ("broken.wav", b"RIFF\xff\xff\x00\x00WAVEfmt " + bytes(range(256)) * 8),
                "broken.wav",
            ),
        }
        for name, (f, expected) in cases.items():
            r = upload(c, v["id"], [f])
            assert r.status_code == 201, (name, r.text)
            job = wait_job(c, r.json()["job"]["id"])
            assert job["status"] == "failed", (name, job)
            assert expected in job["error"].lower(), (name, job["error"])
            assert "Traceback" not in job["error"]
            track = c.get(f"/api/v1/tracks/{r.json()['tracks'][0]['id']}").json()
            assert track["status"] == "failed" and track["error"]

        # the good track is untouched and the worker is still alive
        tracks = c.get(f"/api/v1/voices/{v['id']}/tracks").json()
        assert tracks[0]["filename"] == "good.wav" and tracks[0]["status"] == "ready"
        assert c.get(f"/api/v1/tracks/{tracks[0]['id']}/audio").content == good.read_bytes()
        assert httpx.get(f"{stack.url}/api/v1/health").json()["queues_without_workers"] == []


def test_hostile_file_names_are_harmless(stack, tmp_path):
    data = song(tmp_path / "x.wav", seconds=1.2).read_bytes()
    names = [
        "../../../etc/passwd.wav",
        "-rf ; rm -rf ~.wav",
        "spa ce 'q\"uote'.wav",
        "ünï©ødé 歌.wav",
        "..\\..\\win.wav",
        "\x00nul\x07.wav",
    ]
    with stack.client("alice") as c:
        v = new_voice(c, "Names")
        r = upload(c, v["id"], [(n, data) for n in names])
        assert r.status_code == 201, r.text
        shown = [t["filename"] for t in r.json()["tracks"]]
        assert shown[0] == "passwd.wav" and shown[4] == "win.wav"
        assert all("/" not in s and "\\" not in s and "\x00" not in s for s in shown)
        job = wait_job(c, r.json()["job"]["id"])
        assert job["status"] == "succeeded", job
    stored = [p for p in (stack.data_dir / "storage").rglob("*") if p.is_file()]
    assert all(stack.data_dir / "storage" in p.parents for p in stored)
    assert not (stack.data_dir / "etc").exists()


def test_users_cannot_reach_each_others_resources(stack, tmp_path):
    f = song(tmp_path / "mine.wav", seconds=1.5)
    with stack.client("alice") as a, stack.client("bob") as b:
        v = new_voice(a, "Private")
        up = upload(a, v["id"], [f]).json()
        job = wait_job(a, up["job"]["id"])
        track_id = up["tracks"][0]["id"]
        art = a.get(f"/api/v1/jobs/{job['id']}/artifacts").json()[0]
        conv = a.post(
            "/api/v1/conversions",
            data={"voice_id": v["id"]},
            files=[("files", ("src.wav", f.read_bytes(), "audio/wav"))],
        )
        assert conv.status_code == 201, conv.text
        conv_id = conv.json()[0]["id"]
        conv_job = conv.json()[0]["job"]["id"]

        probes = [
            ("GET", f"/api/v1/voices/{v['id']}"),
            ("PATCH", f"/api/v1/voices/{v['id']}"),
            ("DELETE", f"/api/v1/voices/{v['id']}"),
            ("GET", f"/api/v1/voices/{v['id']}/tracks"),
            ("POST", f"/api/v1/voices/{v['id']}/train"),
            ("GET", f"/api/v1/tracks/{track_id}"),
            ("DELETE", f"/api/v1/tracks/{track_id}"),
            ("GET", f"/api/v1/tracks/{track_id}/audio"),
            ("GET", f"/api/v1/jobs/{job['id']}"),
            ("POST", f"/api/v1/jobs/{conv_job}/cancel"),
            ("GET", f"/api/v1/jobs/{job['id']}/events"),
            ("GET", f"/api/v1/jobs/{job['id']}/artifacts"),
            ("GET", f"/api/v1/artifacts/{art['id']}"),
            ("GET", f"/api/v1/artifacts/{art['id']}/download"),
            ("GET", f"/api/v1/conversions/{conv_id}"),
            ("DELETE", f"/api/v1/conversions/{conv_id}"),
        ]
        for method, path in probes:
            body = (
                {"name": "stolen"}
                if method == "PATCH"
                else ({} if path.endswith("/train") else None)
            )
            r = b.request(method, path, json=body)
            assert r.status_code == 404, (method, path, r.status_code, r.text)
        r = upload(b, v["id"], [f])
        assert r.status_code == 404
        r = b.post(
            "/api/v1/conversions",
            data={"voice_id": v["id"]},
            files=[("files", ("s.wav", f.read_bytes(), "audio/wav"))],
        )
        assert r.status_code == 404
        # bob's lists do not show alice's things
        for path in ("/api/v1/voices", "/api/v1/jobs", "/api/v1/tracks", "/api/v1/conversions"):
            ids = {x["id"] for x in b.get(path).json()}
            assert not ids & {v["id"], job["id"], track_id, conv_id, conv_job}, path
        # and everything of alice's is intact
        assert a.get(f"/api/v1/voices/{v['id']}").json()["name"] == "Private"
        assert a.get(f"/api/v1/artifacts/{art['id']}/download").status_code == 200
        wait_job(a, conv_job)


def test_training_without_installed_models_fails_clearly(stack, tmp_path):
    with stack.client("alice") as c:
        v = new_voice(c, "Trainee")
        assert c.post(f"/api/v1/voices/{v['id']}/train", json={}).status_code == 400
        r = upload(c, v["id"], [song(tmp_path / "v.wav", seconds=6)], vocals_only=True)
        assert r.json()["tracks"][0]["vocals_only"] is True
        wait_job(c, r.json()["job"]["id"])
        bad = c.post(f"/api/v1/voices/{v['id']}/train", json={"config": "tiny", "max_steps": 10})
        # preflight: the default content encoders are not installed in this stack's models
        # folder; the answer says which and how to get them, within a second, and no job starts
        assert bad.status_code == 409, bad.text
        assert "svc-studio assets pull whisper-large-v2" in bad.json()["detail"]
        assert c.get("/api/v1/jobs", params={"voice_id": v["id"]}).json()[0]["kind"] == "ingest"
        bad = c.post(f"/api/v1/voices/{v['id']}/train", json={"config": "huge"})
        assert bad.status_code == 422
        # the worker keeps its own check: a model removed after the request was accepted
        from svc_core.assets import get_asset

        vec = stack.data_dir / "models" / get_asset(stack.assets["vec_model"]).filename
        kept = vec.with_suffix(".kept")
        body = {
            "config": "tiny",
            "max_steps": 10,
            "f0_method": "harvest",
            "ppg_model": stack.assets["ppg_model"],
            "vec_model": stack.assets["vec_model"],
        }
        r = c.post(f"/api/v1/voices/{v['id']}/train", json=body)
        assert r.status_code == 202, r.text
        vec.rename(kept)
        try:
            job = r.json()
            assert job["stages"] == ["ingest", "separate", "slice", "preprocess", "train"]
            job = wait_job(c, job["id"])
        finally:
            kept.rename(vec)
        assert job["status"] == "failed"
        # vocals-only: no separation model needed; slicing works; the content encoder is
        # gone from the models folder: the message says how to get it
        assert job["stage"] == "preprocess", job
        assert "svc-studio assets pull hubert-soft" in job["error"], job["error"]
        assert c.get(f"/api/v1/voices/{v['id']}").json()["status"] == "failed"


def test_several_source_songs_make_several_conversions(stack, tmp_path):
    with stack.client("alice") as c:
        v = new_voice(c, "Target")
        files = [
            ("files", (f"song{i}.wav", song(tmp_path / f"s{i}.wav", 1.5).read_bytes(), "audio/wav"))
            for i in range(2)
        ]
        bad_opts = c.post(
            "/api/v1/conversions",
            files=files,
            data={"voice_id": v["id"], "options": json.dumps({"transpose": 99.5})},
        )
        assert bad_opts.status_code == 422
        r = c.post(
            "/api/v1/conversions",
            files=files,
            data={
                "voice_id": v["id"],
                "options": json.dumps({"transpose": "auto", "output_format": "flac"}),
            },
        )
        assert r.status_code == 201, r.text
        convs = r.json()
        assert len(convs) == 2 and convs[0]["options"]["transpose"] == "auto"
        for conv in convs:
            assert conv["job"]["stages"] == ["ingest", "separate", "convert", "mix", "report"]
            job = wait_job(c, conv["job"]["id"])
            # the voice was never trained: separation ran, conversion says what is missing
            assert job["status"] == "failed" and job["stage"] == "convert", job
            assert "has not been trained yet" in job["error"], job["error"]
            got = c.get(f"/api/v1/conversions/{conv['id']}").json()
            assert got["source_track"]["status"] == "ready"
        assert c.delete(f"/api/v1/conversions/{convs[0]['id']}").status_code == 204
        assert c.get(f"/api/v1/conversions/{convs[0]['id']}").status_code == 404


def test_job_events_stream_until_the_job_ends(stack, tmp_path):
    with stack.client("alice") as c:
        v = new_voice(c, "Events")
        r = upload(c, v["id"], [song(tmp_path / f"e{i}.wav", 2.0) for i in range(3)])
        job_id = r.json()["job"]["id"]
        events, t0 = [], time.monotonic()
        with c.stream("GET", f"/api/v1/jobs/{job_id}/events") as resp:
            assert resp.status_code == 200
            assert resp.headers["content-type"].startswith("text/event-stream")
            name = None
            for line in resp.iter_lines():
                if line.startswith("event: "):
                    name = line[7:]
                elif line.startswith("data: "):
                    events.append((name, json.loads(line[6:])))
                    if name == "end":
                        break
                assert time.monotonic() - t0 < 120
        jobs = [e for n, e in events if n == "job"]
        assert events[-1] == ("end", {"status": "succeeded"})
        assert jobs[-1]["status"] == "succeeded" and jobs[-1]["progress"] == 1.0
        progress = [j["progress"] for j in jobs]
        assert progress == sorted(progress)


def test_cancel_a_running_job(stack, tmp_path):
    files = [song(tmp_path / f"c{i}.wav", seconds=40, sr=48000, channels=2) for i in range(8)]
    with stack.client("alice") as c:
        v = new_voice(c, "Cancel")
        r = upload(c, v["id"], files)
        assert r.status_code == 201, r.text
        job_id = r.json()["job"]["id"]
        wait_job(c, job_id, statuses=("running", "succeeded", "failed"))
        r = c.post(f"/api/v1/jobs/{job_id}/cancel")
        assert r.status_code == 200 and r.json()["cancel_requested"] is True
        job = wait_job(c, job_id)
        assert job["status"] == "cancelled", job
        statuses = [t["status"] for t in c.get(f"/api/v1/voices/{v['id']}/tracks").json()]
        assert "uploaded" in statuses  # it stopped before the end
        assert c.post(f"/api/v1/jobs/{job_id}/cancel").status_code == 409

        # retry: the same job continues where it stopped; finished work is not redone
        done_before = {
            a["track_id"]: a["id"]
            for a in c.get(f"/api/v1/jobs/{job_id}/artifacts").json()
            if a["kind"] == "decoded"
        }
        with stack.client("bob") as other:
            assert other.post(f"/api/v1/jobs/{job_id}/retry").status_code == 404
        r = c.post(f"/api/v1/jobs/{job_id}/retry")
        assert r.status_code == 202, r.text
        assert r.json()["id"] == job_id and r.json()["status"] in ("queued", "running")
        assert r.json()["error"] is None and r.json()["cancel_requested"] is False
        job = wait_job(c, job_id, timeout=180)
        assert job["status"] == "succeeded", job
        tracks = c.get(f"/api/v1/voices/{v['id']}/tracks").json()
        assert [t["status"] for t in tracks] == ["ready"] * len(files)
        decoded = [
            a for a in c.get(f"/api/v1/jobs/{job_id}/artifacts").json() if a["kind"] == "decoded"
        ]
        assert len(decoded) == len(files)  # one per track: none decoded twice
        assert {a["track_id"]: a["id"] for a in decoded if a["track_id"] in done_before} == (
            done_before
        )
        r = c.post(f"/api/v1/jobs/{job_id}/retry")
        assert r.status_code == 409 and "succeeded" in r.json()["detail"]


def test_training_on_a_too_short_song_fails_at_slicing_with_a_plain_message(stack, tmp_path):
    with stack.client("alice") as c:
        v = new_voice(c, "Brief")
        r = upload(c, v["id"], [song(tmp_path / "short take.wav", seconds=2)], vocals_only=True)
        wait_job(c, r.json()["job"]["id"])
        body = {"config": "tiny", "max_steps": 1, "vec_model": stack.assets["vec_model"]}
        r = c.post(f"/api/v1/voices/{v['id']}/train", json={**body, "ppg_model": None})
        job = wait_job(c, r.json()["id"])
        assert job["status"] == "failed" and job["stage"] == "slice", job
        assert "'short take.wav'" in job["error"] and "at least 5 s" in job["error"], job
        # the upload is kept: nothing is lost by a failed job
        assert c.get(f"/api/v1/voices/{v['id']}/tracks").json()[0]["status"] == "ready"


def test_slicer_and_loudness_settings_reach_the_stages(stack, tmp_path):
    with stack.client("alice") as c:
        v = new_voice(c, "Short takes")
        r = upload(c, v["id"], [song(tmp_path / "take.wav", seconds=3)], vocals_only=True)
        wait_job(c, r.json()["job"]["id"])
        base = {
            "config": "tiny",
            "max_steps": 2,
            "f0_method": "dio",
            "ppg_model": stack.assets["ppg_model"],
            "vec_model": stack.assets["vec_model"],
        }
        bad = c.post(
            f"/api/v1/voices/{v['id']}/train", json={**base, "slicer": {"min_length_ms": 10}}
        )
        assert bad.status_code == 422
        # inconsistent but individually valid: the slice stage says what is wrong
        r = c.post(
            f"/api/v1/voices/{v['id']}/train",
            json={**base, "slicer": {"min_length_ms": 400, "min_interval_ms": 900}},
        )
        job = wait_job(c, r.json()["id"])
        assert job["status"] == "failed" and "min_length >= min_interval" in job["error"], job
        # a 3-s take slices with a 2-s minimum, and trains at the asked loudness
        r = c.post(
            f"/api/v1/voices/{v['id']}/train",
            json={**base, "slicer": {"min_length_ms": 2000}, "target_lufs": -18},
        )
        job = wait_job(c, r.json()["id"], timeout=180)
        assert job["status"] == "succeeded", job
        voice = c.get(f"/api/v1/voices/{v['id']}").json()
        assert voice["settings"]["features"]["target_lufs"] == -18
        assert voice["report"]["slice_count"] == 1


def test_import_a_singers_so_vits_svc_5_0_voice(stack, tmp_path):
    """A 5.0 export + its speaker0.spk.npy + hparams YAML becomes a ready voice; bad or
    mismatching files get a 4xx or a failed job in plain words, and nothing is kept."""
    import numpy as np

    from tests.common import sovits5_golden as G

    files = G.write_layouts("tiny", tmp_path)
    spk = tmp_path / "speaker0.spk.npy"
    np.save(spk, G.inputs("tiny")["spk"])
    model, hparams = files["export"].read_bytes(), G.hparams_path("tiny").read_bytes()

    def send(c, parts, name="Singer 5.0"):
        return c.post("/api/v1/voices/import", data={"name": name}, files=parts)

    with stack.client("alice") as c:
        r = send(
            c,
            [
                ("files", ("sovits5.0.pth", model, "application/octet-stream")),
                ("speaker", ("speaker0.spk.npy", spk.read_bytes(), "application/octet-stream")),
                ("hparams", ("tiny.yaml", hparams, "text/yaml")),
            ],
        )
        assert r.status_code == 201, r.text
        job = wait_job(c, r.json()["job"]["id"])
        assert job["status"] == "succeeded", job
        voice = c.get(f"/api/v1/voices/{job['voice_id']}").json()
        assert voice["status"] == "ready" and voice["name"] == "Singer 5.0"
        kinds = {a["kind"] for a in voice["artifacts"]}
        assert {"voice_package", "spk"} <= kinds
        assert voice["settings"]["features"]["speaker_encoder"] == "sovits5"
        assert "retrieval_index" not in kinds  # a 5.0 model comes without training features
        # the uploads are gone once the voice's artifacts are stored
        assert not list((stack.data_dir / "storage").glob(f"u/*/voices/{voice['id']}/import/*"))

        # a 5.0 model without its speaker vector: 400 before anything is stored
        r = send(c, [("files", ("sovits5.0.pth", model, "application/octet-stream"))])
        assert r.status_code == 400 and "speaker" in r.json()["detail"]
        # a speaker file that is not .npy: 415
        r = send(
            c,
            [
                ("files", ("sovits5.0.pth", model, "application/octet-stream")),
                ("speaker", ("speaker0.spk.npy", b"hello", "application/octet-stream")),
            ],
        )
        assert r.status_code == 415
        # the tiny model without its hparams is read with 5.0's base sizes: a failed job
        r = send(
            c,
            [
                ("files", ("sovits5.0.pth", model, "application/octet-stream")),
                ("speaker", ("speaker0.spk.npy", spk.read_bytes(), "application/octet-stream")),
            ],
            name="Mismatch",
        )
        assert r.status_code == 201, r.text
        job = wait_job(c, r.json()["job"]["id"])
        assert job["status"] == "failed" and "does not fit" in job["error"], job
        # the earlier voice is untouched
        again = c.get(f"/api/v1/voices/{voice['id']}").json()
        assert again["status"] == "ready" and {"voice_package", "spk"} <= {
            a["kind"] for a in again["artifacts"]
        }
