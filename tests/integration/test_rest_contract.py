"""The REST contract a script relies on, over HTTP with a real worker on both backends: typed
bodies in the spec, converting an uploaded song by its id, and idempotent submission
(including concurrent requests with one key)."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import httpx

from tests.common.audio_files import song
from tests.common.stack import new_voice, upload, wait_job

JOB_CREATING = [
    ("post", "/api/v1/voices/{voice_id}/tracks"),
    ("post", "/api/v1/voices/{voice_id}/train"),
    ("post", "/api/v1/voices/import"),
    ("post", "/api/v1/tracks"),
    ("post", "/api/v1/conversions"),
    ("post", "/api/v1/conversions/{conversion_id}/remix"),
    ("post", "/api/v1/jobs/{job_id}/retry"),
]


def _upload_sources(c: httpx.Client, files, key: str | None = None) -> httpx.Response:
    headers = {"Idempotency-Key": key} if key else {}
    return c.post(
        "/api/v1/tracks",
        files=[("files", (name, data, "audio/wav")) for name, data in files],
        headers=headers,
    )


def test_every_body_is_a_named_schema_and_every_submission_takes_a_key(stack):
    spec = httpx.get(f"{stack.url}/api/v1/openapi.json").json()
    schemas = spec["components"]["schemas"]
    for name in ("ConversionRequest", "ConversionOptions", "TrainRequest", "RemixRequest"):
        assert name in schemas, name
    assert "as JSON" not in json.dumps(spec)
    body = spec["paths"]["/api/v1/conversions"]["post"]["requestBody"]["content"]
    assert body["application/json"]["schema"] == {"$ref": "#/components/schemas/ConversionRequest"}
    form = body["multipart/form-data"]
    assert form["schema"]["properties"]["options"] == {
        "$ref": "#/components/schemas/ConversionOptions"
    }
    for method, path in JOB_CREATING:
        params = spec["paths"][path][method].get("parameters", [])
        assert any(p["name"] == "Idempotency-Key" and p["in"] == "header" for p in params), (
            f"{method} {path}"
        )


def test_convert_uploaded_songs_by_id(stack, tmp_path):
    with stack.client("alice") as c, stack.client("bob") as b:
        v = new_voice(c, "By id")
        up = _upload_sources(c, [("src.wav", song(tmp_path / "src.wav", 1.5).read_bytes())])
        assert up.status_code == 201, up.text
        (track,) = up.json()["tracks"]
        assert track["role"] == "source"
        assert wait_job(c, up.json()["job"]["id"])["status"] == "succeeded"
        decoded = c.get("/api/v1/tracks/" + track["id"]).json()
        assert decoded["status"] == "ready"

        # another user's track, an unknown voice, a reference song and bad options
        r = b.post("/api/v1/conversions", json={"voice_id": v["id"], "track_ids": [track["id"]]})
        assert r.status_code == 404
        bv = new_voice(b, "Bob's")
        r = b.post("/api/v1/conversions", json={"voice_id": bv["id"], "track_ids": [track["id"]]})
        assert r.status_code == 404 and "Track" in r.json()["detail"]
        ref = upload(c, v["id"], [tmp_path / "src.wav"]).json()["tracks"][0]
        r = c.post("/api/v1/conversions", json={"voice_id": v["id"], "track_ids": [ref["id"]]})
        assert r.status_code == 400 and "reference song" in r.json()["detail"]
        r = c.post(
            "/api/v1/conversions",
            json={"voice_id": v["id"], "track_ids": [track["id"]], "options": {"transpose": 99.5}},
        )
        assert r.status_code == 422
        r = c.post("/api/v1/conversions", json={"voice_id": v["id"], "track_ids": []})
        assert r.status_code == 422

        # one song into the voice twice over: two conversions of the same track
        body = {
            "voice_id": v["id"],
            "track_ids": [track["id"]],
            "options": {"output_format": "flac", "transpose": "auto"},
        }
        first = c.post("/api/v1/conversions", json=body)
        second = c.post("/api/v1/conversions", json=body)
        assert first.status_code == second.status_code == 201, first.text
        (conv1,), (conv2,) = first.json(), second.json()
        assert conv1["id"] != conv2["id"]
        assert conv1["source_track"]["id"] == conv2["source_track"]["id"] == track["id"]
        assert conv1["options"]["output_format"] == "flac"
        job = wait_job(c, conv1["job"]["id"])
        # the voice was never trained: the song's decoding was reused, separation ran
        assert job["status"] == "failed" and job["stage"] == "convert", job
        decoded_files = [
            a
            for a in c.get("/api/v1/jobs/" + up.json()["job"]["id"] + "/artifacts").json()
            if a["kind"] == "decoded"
        ]
        assert len(decoded_files) == 1
        assert not [
            a
            for a in c.get("/api/v1/jobs/" + conv1["job"]["id"] + "/artifacts").json()
            if a["kind"] == "decoded"
        ], "the conversion decoded the song again"
        wait_job(c, conv2["job"]["id"])

        # a song uploaded on its own outlives its conversions, and is not deleted under them
        assert c.delete("/api/v1/tracks/" + track["id"]).status_code == 409
        assert c.delete("/api/v1/conversions/" + conv1["id"]).status_code == 204
        assert c.delete("/api/v1/conversions/" + conv2["id"]).status_code == 204
        assert c.get("/api/v1/tracks/" + track["id"]).status_code == 200
        assert c.delete("/api/v1/tracks/" + track["id"]).status_code == 204


def test_a_repeated_submission_gives_the_first_answer_and_no_second_job(stack, tmp_path):
    with stack.client("alice") as c:
        v = new_voice(c, "Idempotent")
        ref = ("ref.wav", song(tmp_path / "ref.wav", 1.5).read_bytes())
        key = {"Idempotency-Key": f"train-{stack.backend}-1"}
        files = [("files", (ref[0], ref[1], "audio/wav"))]
        up1 = c.post(f"/api/v1/voices/{v['id']}/tracks", files=files, headers=key)
        up2 = c.post(f"/api/v1/voices/{v['id']}/tracks", files=files, headers=key)
        assert up1.status_code == up2.status_code == 201, up1.text
        assert up2.headers.get("idempotent-replayed") == "true"
        assert up1.json()["job"]["id"] == up2.json()["job"]["id"]
        assert len(c.get(f"/api/v1/voices/{v['id']}/tracks").json()) == 1
        wait_job(c, up1.json()["job"]["id"])

        body = {"config": "tiny", "max_steps": 2, "ppg_model": None, "f0_method": "harvest"}
        tkey = {"Idempotency-Key": f"train-{stack.backend}-2"}
        t1 = c.post(f"/api/v1/voices/{v['id']}/train", json=body, headers=tkey)
        assert t1.status_code == 202, t1.text
        # the same request again: the first answer, even though the voice is training now
        t2 = c.post(
            f"/api/v1/voices/{v['id']}/train", json=dict(reversed(body.items())), headers=tkey
        )
        assert t2.status_code == 202 and t2.json()["id"] == t1.json()["id"]
        # the same key for another request: refused in words; without a key: 409 (busy)
        t3 = c.post(f"/api/v1/voices/{v['id']}/train", json={**body, "max_steps": 3}, headers=tkey)
        assert t3.status_code == 422 and "different request" in t3.json()["detail"]
        other = c.post(f"/api/v1/voices/{v['id']}/train", json=body)
        assert other.status_code == 409
        jobs = c.get("/api/v1/jobs", params={"voice_id": v["id"]}).json()
        assert [j["kind"] for j in jobs].count("voice") == 1
        bad = c.post(
            f"/api/v1/voices/{v['id']}/train", json=body, headers={"Idempotency-Key": "a b"}
        )
        assert bad.status_code == 400
        c.post(f"/api/v1/jobs/{t1.json()['id']}/cancel")
        wait_job(c, t1.json()["id"])
        # keys are per user: bob's request with alice's key is his own
        with stack.client("bob") as b:
            bv = new_voice(b, "Bob")
            r = b.post(f"/api/v1/voices/{bv['id']}/tracks", files=files, headers=key)
            assert r.status_code == 201 and r.headers.get("idempotent-replayed") is None
            wait_job(b, r.json()["job"]["id"])


def test_concurrent_requests_with_one_key_create_one_job(stack, tmp_path):
    data = song(tmp_path / "same.wav", 1.0).read_bytes()
    key = f"parallel-{stack.backend}"
    with stack.client("alice") as c:
        before = {t["id"] for t in c.get("/api/v1/tracks").json()}

        def send(_i: int) -> httpx.Response:
            with stack.client("alice") as own:
                return _upload_sources(own, [("same.wav", data)], key=key)

        with ThreadPoolExecutor(max_workers=6) as pool:
            answers = list(pool.map(send, range(6)))
        assert [r.status_code for r in answers] == [201] * 6, [r.text for r in answers]
        assert len({r.json()["job"]["id"] for r in answers}) == 1
        assert len({r.json()["tracks"][0]["id"] for r in answers}) == 1
        assert sum(r.headers.get("idempotent-replayed") == "true" for r in answers) == 5
        new = {t["id"] for t in c.get("/api/v1/tracks").json()} - before
        assert len(new) == 1
        wait_job(c, answers[0].json()["job"]["id"])


def test_the_errors_routes_give_are_in_the_spec(stack, tmp_path):
    """Each answer below is checked against the operation's documented responses."""
    spec = httpx.get(f"{stack.url}/api/v1/openapi.json").json()

    def documented(method: str, template: str, r: httpx.Response) -> None:
        codes = spec["paths"][template][method]["responses"]
        assert str(r.status_code) in codes, (method, template, r.status_code, sorted(codes))
        if r.status_code >= 400:
            assert isinstance(r.json()["detail"], str | list), r.text

    anon = stack.client()
    documented("get", "/api/v1/voices", anon.get("/api/v1/voices"))
    with stack.client("alice") as c:
        v = new_voice(c, "Errors")
        documented("get", "/api/v1/tracks/{track_id}", c.get("/api/v1/tracks/nope"))
        documented(
            "post",
            "/api/v1/tracks",
            c.post("/api/v1/tracks", files=[("files", ("a.txt", b"not audio", "text/plain"))]),
        )
        documented("post", "/api/v1/tracks", c.post("/api/v1/tracks", data={"x": "1"}))
        documented(
            "post",
            "/api/v1/voices/{voice_id}/train",
            c.post(f"/api/v1/voices/{v['id']}/train", json={"config": "tiny"}),
        )
        documented(
            "post",
            "/api/v1/voices/{voice_id}/train",
            c.post(
                f"/api/v1/voices/{v['id']}/train",
                json={"config": "tiny"},
                headers={"Idempotency-Key": "bad key"},
            ),
        )
        documented("get", "/api/v1/jobs", c.get("/api/v1/jobs", params={"offset": -1}))
        documented("post", "/api/v1/jobs/{job_id}/cancel", c.post("/api/v1/jobs/nope/cancel"))
