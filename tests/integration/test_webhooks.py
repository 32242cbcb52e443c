"""Signed webhooks over HTTP with a real worker on both backends: a loopback receiver gets
one signed event for an ended job, after a retry when it first answers 500; a host the
server may not call is refused when the job is submitted (the stack allows 127.0.0.1)."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from tests.common.audio_files import song
from tests.common.stack import new_voice, wait_job


class Receiver:
    """A webhook receiver on loopback: answers each POST with the next code given (200 once
    they run out) and keeps the requests."""

    def __init__(self, *codes: int) -> None:
        self.codes = list(codes)
        self.requests: list[tuple[dict[str, str], bytes, int]] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                code = owner.codes.pop(0) if owner.codes else 200
                owner.requests.append((dict(self.headers.items()), body, code))
                self.send_response(code)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver(500)
    yield r
    r.close()


def _upload(c: httpx.Client, data: bytes, **params: str) -> httpx.Response:
    return c.post(
        "/api/v1/tracks", params=params, files=[("files", ("song.wav", data, "audio/wav"))]
    )


def _delivery(c: httpx.Client, job_id: str, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        d = c.get(f"/api/v1/jobs/{job_id}/webhook").json()
        if d["state"] in ("delivered", "gave_up"):
            return d
        time.sleep(0.2)
    raise TimeoutError(f"the webhook of job {job_id} is still {d['state']}: {d}")


JOB_CREATING = [
    ("post", "/api/v1/voices/{voice_id}/tracks"),
    ("post", "/api/v1/voices/{voice_id}/train"),
    ("post", "/api/v1/voices/import"),
    ("post", "/api/v1/tracks"),
    ("post", "/api/v1/conversions"),
    ("post", "/api/v1/conversions/{conversion_id}/remix"),
    ("post", "/api/v1/jobs/{job_id}/retry"),
]


def test_every_submission_takes_a_webhook_url(stack):
    spec = httpx.get(f"{stack.url}/api/v1/openapi.json").json()
    for method, path in JOB_CREATING:
        params = spec["paths"][path][method].get("parameters", [])
        assert any(p["name"] == "webhook_url" and p["in"] == "query" for p in params), path
    for path in (
        "/api/v1/me/webhook",
        "/api/v1/me/webhook-secret",
        "/api/v1/jobs/{job_id}/webhook",
    ):
        assert path in spec["paths"], path


def test_an_ended_job_is_posted_signed_once_after_a_retry(stack, tmp_path, receiver):
    data = song(tmp_path / "song.wav", 1.0).read_bytes()
    with stack.client("alice") as c:
        # events are signed: without a secret the request is refused
        r = _upload(c, data, webhook_url=receiver.url)
        assert r.status_code == 422 and "webhook secret" in r.json()["detail"], r.text
        r = c.post("/api/v1/me/webhook-secret")
        assert r.status_code == 201, r.text
        secret = r.json()["secret"]
        assert len(secret) >= 40
        assert c.get("/api/v1/me/webhook").json() == {
            "url": None,
            "has_secret": True,
            "secret": None,
        }

        up = _upload(c, data, webhook_url=receiver.url)
        assert up.status_code == 201, up.text
        job_id = up.json()["job"]["id"]
        assert wait_job(c, job_id)["status"] == "succeeded"
        d = _delivery(c, job_id)
        assert d["state"] == "delivered" and d["url"] == receiver.url
        assert [a["status_code"] for a in d["attempts"]] == [500, 200]
        assert d["attempts"][0]["error"] and d["attempts"][1]["error"] is None

        time.sleep(2)  # a few more rounds of the worker's loop: nothing is sent again
        assert [code for _, _, code in receiver.requests] == [500, 200]
        for attempt, (headers, body, _) in enumerate(receiver.requests, 1):
            ts = headers["Svc-Webhook-Timestamp"]
            mac = hmac.new(secret.encode(), f"{ts}.".encode() + body, hashlib.sha256)
            assert headers["Svc-Webhook-Signature"] == f"sha256={mac.hexdigest()}"
            assert abs(time.time() - int(ts)) < 120
            assert headers["Svc-Webhook-Id"] == d["event_id"]
            assert headers["Svc-Webhook-Attempt"] == str(attempt)
            assert headers["Content-Type"] == "application/json"
        event = json.loads(receiver.requests[-1][1])
        assert event["id"] == d["event_id"] and event["type"] == "job.succeeded"
        assert event["job"]["id"] == job_id and event["job"]["status"] == "succeeded"
        assert event["job"]["kind"] == "ingest" and event["job"]["finished_at"]
        made = c.get(f"/api/v1/jobs/{job_id}/artifacts").json()
        assert made
        assert sorted(a["download_url"] for a in event["artifacts"]) == sorted(
            f"/api/v1/artifacts/{a['id']}/download" for a in made
        )
        assert c.get(event["artifacts"][0]["download_url"]).status_code == 200
        # a job submitted without one gets no webhook
        plain = _upload(c, song(tmp_path / "other.wav", 1.1).read_bytes())
        wait_job(c, plain.json()["job"]["id"])
        assert c.get(f"/api/v1/jobs/{plain.json()['job']['id']}/webhook").json()["state"] == "none"


def test_a_host_the_server_may_not_call_is_refused_at_submission(stack, tmp_path):
    data = song(tmp_path / "song.wav", 1.0).read_bytes()
    with stack.client("bob") as b:
        assert b.post("/api/v1/me/webhook-secret").status_code == 201
        jobs, tracks = len(b.get("/api/v1/jobs").json()), len(b.get("/api/v1/tracks").json())
        for url in (
            "http://10.0.0.1/hook",
            "http://example.invalid/hook",
            "http://127.0.0.1@example.invalid/",
            "ftp://127.0.0.1/hook",
        ):
            r = _upload(b, data, webhook_url=url)
            assert r.status_code == 422, (url, r.text)
            assert "webhook" in r.json()["detail"].lower(), r.text
        v = new_voice(b, "Hooked")
        r = b.post(
            f"/api/v1/voices/{v['id']}/train",
            params={"webhook_url": "http://169.254.169.254/latest"},
            json={"config": "tiny", "max_steps": 2},
        )
        assert r.status_code == 422 and "not allowed" in r.json()["detail"]
        assert len(b.get("/api/v1/jobs").json()) == jobs
        assert len(b.get("/api/v1/tracks").json()) == tracks

        # the default webhook is checked the same way; jobs without one use it
        r = b.put("/api/v1/me/webhook", json={"url": "http://10.0.0.1/"})
        assert r.status_code == 422
        ok = "http://127.0.0.1:9/default"
        r = b.put("/api/v1/me/webhook", json={"url": ok})
        assert r.status_code == 200 and r.json()["url"] == ok and r.json()["secret"] is None
        up = _upload(b, data)
        assert up.status_code == 201, up.text
        job_id = up.json()["job"]["id"]
        assert b.get(f"/api/v1/jobs/{job_id}/webhook").json()["url"] == ok
        b.post(f"/api/v1/jobs/{job_id}/cancel")
        wait_job(b, job_id)
        assert b.put("/api/v1/me/webhook", json={"url": None}).json()["url"] is None
