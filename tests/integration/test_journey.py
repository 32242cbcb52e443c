"""The whole product through the API with a real worker: songs in, a mixed cover out.

Reference songs and source songs are generated (a sung melody over an accompaniment); the
models are tiny official-format checkpoints installed in the stack's models folder; training
uses the tiny config. Everything else is the real code path: ingest → separate (audio-
separator) → slice → preprocess → train → convert → mix → report, then downloads.
"""

from __future__ import annotations

import io
import json
import time
import zipfile

import numpy as np
import pytest
import soundfile as sf

from tests.common import synth
from tests.common.stack import new_voice, upload, wait_job

SR = 44100


def write_song(path, seconds, base_f0, seed):
    mix, _, _ = synth.sung_song(seconds, base_f0=base_f0, seed=seed)
    return synth.write(path, mix, SR)


def train_request(stack, **extra):
    return {
        "config": "tiny",
        "max_steps": 16,
        "f0_method": "harvest",
        "ppg_model": stack.assets["ppg_model"],
        "vec_model": stack.assets["vec_model"],
        **extra,
    }


def download(c, art) -> bytes:
    r = c.get(art["download_url"])
    assert r.status_code == 200, r.text
    return r.content


def by_kind(items):
    out: dict[str, list] = {}
    for a in items:
        out.setdefault(a["kind"], []).append(a)
    return out


def test_songs_in_cover_out(stack, tmp_path):
    with stack.client("alice") as c:
        v = new_voice(c, "Journey")
        refs = [
            write_song(tmp_path / f"ref{i}.wav", 7.0, f0, i) for i, f0 in enumerate((262.0, 294.0))
        ]
        up = upload(c, v["id"], refs)
        assert up.status_code == 201, up.text
        assert wait_job(c, up.json()["job"]["id"])["status"] == "succeeded"

        r = c.post(f"/api/v1/voices/{v['id']}/train", json=train_request(stack))
        assert r.status_code == 202, r.text
        job_id = r.json()["id"]
        seen_stages, progress = set(), []
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            job = c.get(f"/api/v1/jobs/{job_id}").json()
            seen_stages.add(job["stage"])
            progress.append(job["progress"])
            if job["status"] in ("succeeded", "failed", "cancelled"):
                break
            time.sleep(0.2)
        assert job["status"] == "succeeded", job
        assert progress == sorted(progress) and progress[-1] == 1.0
        assert {"separate", "preprocess", "train"} <= seen_stages
        curve = job["metrics"]["curve"]
        assert curve and curve[-1]["step"] == 16
        assert job["metrics"]["train"]["starts_from"] == "from scratch"
        assert job["metrics"]["train"]["train_slices"] >= 1

        voice = c.get(f"/api/v1/voices/{v['id']}").json()
        assert voice["status"] == "ready"
        rep = voice["report"]
        assert rep["slice_count"] >= 2 and rep["range"] is not None
        assert any("less than 10 minutes" in w for w in rep["warnings"])
        arts = by_kind(voice["artifacts"])
        assert {"spk", "voice_package", "metrics", "retrieval_index"} <= set(arts)
        assert arts["retrieval_index"][0]["meta"]["dims"] == {"ppg": 16, "vec": 16}
        spk = np.load(io.BytesIO(download(c, arts["spk"][0])))
        assert spk.shape == (256,) and abs(np.linalg.norm(spk) - 1) < 1e-3
        package = download(c, arts["voice_package"][0])
        members = zipfile.ZipFile(io.BytesIO(package)).namelist()
        assert "voice.json" in members and "retrieval.svcindex" in members
        stack.exported_package = package  # type: ignore[attr-defined]  # for the import test
        stack.trained_voice_id = v["id"]  # type: ignore[attr-defined]
        stack.trained_voice_id = v["id"]  # type: ignore[attr-defined]

        # two source songs against the voice in one request, with retrieval, consonant
        # protection and the source's loudness envelope
        sources = [write_song(tmp_path / f"src{i}.wav", 5.0 + i, 196.0, 10 + i) for i in range(2)]
        opts = {
            "transpose": "auto",
            "output_format": "wav24",
            "retrieval_ratio": 0.75,
            "protect": 0.33,
            "volume_envelope": 0.5,
        }
        r = c.post(
            "/api/v1/conversions",
            data={"voice_id": v["id"], "options": json.dumps(opts)},
            files=[("files", (p.name, p.read_bytes(), "audio/wav")) for p in sources],
        )
        assert r.status_code == 201, r.text
        convs = r.json()
        assert len(convs) == 2
        for conv, src in zip(convs, sources, strict=True):
            job = wait_job(c, conv["job"]["id"], timeout=240)
            assert job["status"] == "succeeded", job
            got = c.get(f"/api/v1/conversions/{conv['id']}").json()
            arts = by_kind(got["artifacts"])
            assert {"mix", "converted_vocals", "instrumental", "vocals"} <= set(arts)
            mix, sr = sf.read(io.BytesIO(download(c, arts["mix"][0])), always_2d=True)
            assert sr == SR and mix.shape == (sf.info(str(src)).frames, 2)
            assert 20 * np.log10(np.sqrt(np.mean(mix**2))) > -45  # not silent
            assert np.max(np.abs(mix)) < 0.9  # limited to -1 dBTP: not clipped
            assert sf.info(io.BytesIO(download(c, arts["mix"][0]))).subtype == "PCM_24"
            vocals, vsr = sf.read(io.BytesIO(download(c, arts["converted_vocals"][0])))
            assert vsr == SR and len(vocals) == len(mix)
            report = got["report"]
            assert report["transpose"]["mode"] == "auto"
            assert report["quality"]["pitch"] is not None and report["verdicts"]
            assert report["mix"]["true_peak_dbtp"] <= -1.0
            # Range request, as an audio element seeking
            part = c.get(arts["mix"][0]["download_url"], headers={"Range": "bytes=100-199"})
            assert part.status_code == 206 and len(part.content) == 100

        # re-mix with other settings: no re-conversion, a new file
        conv = convs[0]
        r = c.post(
            f"/api/v1/conversions/{conv['id']}/remix",
            json={"output_format": "mp3", "vocal_gain_db": -3, "reverb": 0.2},
        )
        assert r.status_code == 202, r.text
        job = wait_job(c, r.json()["id"])
        assert job["status"] == "succeeded" and job["stages"] == ["mix"], job
        arts = by_kind(c.get(f"/api/v1/conversions/{conv['id']}").json()["artifacts"])
        assert len(arts["mix"]) == 2 and len(arts["converted_vocals"]) == 1
        assert any(a["filename"].endswith(".mp3") for a in arts["mix"])


def test_cancelling_a_conversion_leaves_no_half_written_outputs(stack, tmp_path):
    with stack.client("alice") as c:
        voices = [v for v in c.get("/api/v1/voices").json() if v["status"] == "ready"]
        if not voices:
            pytest.skip("needs the trained voice of test_songs_in_cover_out")
        src = write_song(tmp_path / "long.flac", 60.0, 196.0, 3)  # FLAC: under 8 MiB
        r = c.post(
            "/api/v1/conversions",
            data={"voice_id": voices[0]["id"]},
            files=[("files", (src.name, src.read_bytes(), "audio/wav"))],
        )
        assert r.status_code == 201, r.text
        conv = r.json()[0]
        job = wait_job(
            c,
            conv["job"]["id"],
            timeout=180,
            statuses=("succeeded", "failed", "cancelled", "running"),
        )
        deadline = time.monotonic() + 180
        while job["stage"] != "convert" and time.monotonic() < deadline:
            job = c.get(f"/api/v1/jobs/{job['id']}").json()
            assert job["status"] not in ("succeeded", "failed"), job
            time.sleep(0.05)
        assert c.post(f"/api/v1/jobs/{job['id']}/cancel").status_code == 200
        job = wait_job(c, job["id"])
        assert job["status"] == "cancelled", job
        kinds = {a["kind"] for a in c.get(f"/api/v1/conversions/{conv['id']}").json()["artifacts"]}
        assert not kinds & {"converted_vocals", "mix", "converted_vocals_model_rate"}
        tmp = stack.data_dir / "storage" / ".tmp"
        assert not tmp.exists() or not any(tmp.iterdir())
        # and no cache of finished chunks is kept for a cancelled conversion
        assert not list(
            (stack.data_dir / "storage").glob(f"u/*/conversions/{conv['id']}/partial-*")
        )


def _import(c, name: str, data: bytes):
    return c.post(
        "/api/v1/voices/import",
        data={"name": name},
        files=[("files", (f"{name}.zip", data, "application/zip"))],
    )


def test_voice_package_export_import_and_refusals(stack, tmp_path):
    package = getattr(stack, "exported_package", None)
    if package is None:
        pytest.skip("needs the package exported by test_songs_in_cover_out")
    with stack.client("bob") as c:
        r = _import(c, "Borrowed", package)
        assert r.status_code == 201, r.text
        job = wait_job(c, r.json()["job"]["id"])
        assert job["status"] == "succeeded", job
        voice = c.get(f"/api/v1/voices/{job['voice_id']}").json()
        assert voice["status"] == "ready" and voice["name"] == "Borrowed"
        assert {"voice_package", "spk", "retrieval_index"} <= {
            a["kind"] for a in voice["artifacts"]
        }  # the package's index came along
        # the imported voice converts (its F0 method and encoders came with the package)
        src = write_song(tmp_path / "s.wav", 4.0, 220.0, 5)
        files = [("files", (src.name, src.read_bytes(), "audio/wav"))]
        r = c.post("/api/v1/conversions", data={"voice_id": voice["id"]}, files=files)
        assert r.status_code == 201, r.text
        plain = r.json()[0]
        assert wait_job(c, plain["job"]["id"], timeout=240)["status"] == "succeeded"

        # blending with someone else's voice: that voice does not exist for bob
        alice_voice = stack.trained_voice_id  # type: ignore[attr-defined]
        opts = {"mix_voice_id": alice_voice}
        r = c.post(
            "/api/v1/conversions",
            files=files,
            data={"voice_id": voice["id"], "options": json.dumps(opts)},
        )
        assert r.status_code == 404
        # a second copy of the voice, blended in: a different target embedding is used
        r = _import(c, "Borrowed again", package)
        other = wait_job(c, r.json()["job"]["id"])["voice_id"]
        spk_id = [
            a for a in c.get(f"/api/v1/voices/{other}").json()["artifacts"] if a["kind"] == "spk"
        ][0]["id"]
        assert c.get(f"/api/v1/artifacts/{spk_id}").status_code == 200
        opts = {"mix_voice_id": other, "mix_weight": 0.3}
        r = c.post(
            "/api/v1/conversions",
            files=files,
            data={"voice_id": voice["id"], "options": json.dumps(opts)},
        )
        assert r.status_code == 201, r.text
        mixed = r.json()[0]
        assert wait_job(c, mixed["job"]["id"], timeout=240)["status"] == "succeeded"
        got = c.get(f"/api/v1/conversions/{mixed['id']}").json()
        assert got["report"]["speaker"] == {
            "voice_id": voice["id"],
            "mix_voice_id": other,
            "mix_weight": 0.3,
        }
        assert got["report"]["quality"] is not None

        # a package of an unknown format version is refused with a plain message
        zin = zipfile.ZipFile(io.BytesIO(package))
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as zout:
            for item in zin.namelist():
                data = zin.read(item)
                if item == "voice.json":
                    info = json.loads(data)
                    info["version"] = 99
                    data = json.dumps(info).encode()
                zout.writestr(item, data)
        r = _import(c, "Future", buf.getvalue())
        job = wait_job(c, r.json()["job"]["id"])
        assert job["status"] == "failed" and "version" in job["error"], job
        assert c.get(f"/api/v1/voices/{job['voice_id']}").json()["status"] == "failed"
        # not a zip at all: refused at upload
        bad = _import(c, "Junk", b"not a zip file at all")
        assert bad.status_code == 415 and "voice package" in bad.json()["detail"]


def _without_index_and_range(package: bytes) -> bytes:
    """The package as an import from elsewhere brings it: no retrieval index, no pitch
    histogram (a so-vits-svc 5.0 model has neither)."""
    zin = zipfile.ZipFile(io.BytesIO(package))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zout:
        for item in zin.namelist():
            if item == "retrieval.svcindex":
                continue
            data = zin.read(item)
            if item == "voice.json":
                info = json.loads(data)
                info["meta"].pop("pitch_histogram", None)
                info["meta"].pop("pitch_hop_s", None)
                data = json.dumps(info).encode()
            zout.writestr(item, data)
    return buf.getvalue()


def test_an_imported_voice_gets_its_index_from_its_songs(stack, tmp_path):
    package = getattr(stack, "exported_package", None)
    if package is None:
        pytest.skip("needs the package exported by test_songs_in_cover_out")
    with stack.client("bob") as c:
        r = _import(c, "Imported", _without_index_and_range(package))
        assert r.status_code == 201, r.text
        job = wait_job(c, r.json()["job"]["id"])
        assert job["status"] == "succeeded", job
        vid = job["voice_id"]
        voice = c.get(f"/api/v1/voices/{vid}").json()
        before = by_kind(voice["artifacts"])
        assert "retrieval_index" not in before and not voice["report"]["histogram"]
        settings = voice["settings"]["features"]

        # no songs yet, or no model: plain 400s
        r = c.post(f"/api/v1/voices/{vid}/index", json={})
        assert r.status_code == 400 and "Upload at least one" in r.json()["detail"], r.text
        empty = new_voice(c, "Untrained")
        r = c.post(f"/api/v1/voices/{empty['id']}/index", json={})
        assert r.status_code == 400 and "no model yet" in r.json()["detail"], r.text

        song = synth.write(tmp_path / "singer.wav", synth.sung_song(6.0, seed=21)[1], SR)
        up = upload(c, vid, [song], vocals_only=True)
        assert up.status_code == 201, up.text
        assert wait_job(c, up.json()["job"]["id"])["status"] == "succeeded"
        r = c.post(f"/api/v1/voices/{vid}/index", json={})
        assert r.status_code == 202, r.text
        # while it runs (queued counts), neither a second build nor a training may start
        for path, body in (("index", {}), ("train", train_request(stack))):
            again = c.post(f"/api/v1/voices/{vid}/{path}", json=body)
            assert again.status_code == 409, again.text
            assert "building its index" in again.json()["detail"]
        job = wait_job(c, r.json()["id"], timeout=240)
        assert job["status"] == "succeeded", job
        assert job["kind"] == "voice_index"
        assert job["stages"] == ["ingest", "separate", "slice", "build_index"]

        voice = c.get(f"/api/v1/voices/{vid}").json()
        assert voice["status"] == "ready"
        assert voice["settings"]["features"] == settings  # what it converts with is unchanged
        after = by_kind(voice["artifacts"])
        assert after["retrieval_index"][0]["meta"]["dims"] == {"ppg": 16, "vec": 16}
        assert [a["sha256"] for a in after["spk"]] == [a["sha256"] for a in before["spk"]]
        # the package now carries the index; its model and speaker vector are the same bytes
        old = zipfile.ZipFile(io.BytesIO(download(c, before["voice_package"][0])))
        newest = max(after["voice_package"], key=lambda a: a["created_at"])
        new = zipfile.ZipFile(io.BytesIO(download(c, newest)))
        assert "retrieval.svcindex" in new.namelist()
        for member in ("generator.pt", "speaker.spk.npy", "voice.json", "config.yaml"):
            assert new.read(member) == old.read(member)
        # the imported voice had no pitch range: it now has its songs'
        rep = voice["report"]
        assert rep["histogram"] and rep["range"] is not None
        assert rep["range_from"] == "index songs" and rep["imported"] is True

        # and it converts with retrieval
        src = synth.write(tmp_path / "src.wav", synth.sung_song(3.0, seed=22)[1], SR)
        r = c.post(
            "/api/v1/conversions",
            data={
                "voice_id": vid,
                "vocals_only": "true",
                "options": json.dumps({"retrieval_ratio": 0.75}),
            },
            files=[("files", (src.name, src.read_bytes(), "audio/wav"))],
        )
        assert r.status_code == 201, r.text
        job = wait_job(c, r.json()[0]["job"]["id"], timeout=240)
        assert job["status"] == "succeeded", job
