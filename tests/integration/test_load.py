"""Under concurrent load the API answers without 5xx and loses nothing, on both backends:
20 uploads in progress with 200 parallel GETs, then 50 open event streams with 100 GETs. Every
accepted upload's original and decoded audio download afterwards. (Latencies are measured in
bench/api_load.py, not asserted here.)"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx

from tests.common.audio_files import song
from tests.common.stack import new_voice, wait_job


def _slow_upload_body(data: bytes, name: str, release: threading.Event):
    """A multipart body sent in two halves: the second only once ``release`` is set, so the
    upload stays in progress on the server meanwhile."""
    boundary = "loadboundary"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="files"; '
        f'filename="{name}"\r\nContent-Type: audio/wav\r\n\r\n'
    ).encode()
    tail = f"\r\n--{boundary}--\r\n".encode()
    half = len(data) // 2

    def body():
        yield head + data[:half]
        release.wait(timeout=120)
        yield data[half:] + tail

    return body(), {"content-type": f"multipart/form-data; boundary={boundary}"}


def test_uploads_in_progress_hold_no_connection_reads_give_no_5xx_nothing_is_lost(stack, tmp_path):
    """20 uploads stay in the middle of their bodies while 200 GETs run: an upload must not
    hold a database connection while its bytes arrive (for its authentication or its checks),
    or the pool runs dry and the GETs time out with 5xx."""
    data = song(tmp_path / "load.wav", 6.0).read_bytes()  # ~1 MB of WAV
    with stack.client("alice") as c:
        voice = new_voice(c, "Load")
        probe = c.post(
            f"/api/v1/voices/{voice['id']}/tracks",
            files=[("files", ("probe.wav", data, "audio/wav"))],
        )
        assert probe.status_code == 201, probe.text
        job_id = probe.json()["job"]["id"]
    auth = {"Authorization": f"Bearer {stack.tokens['alice']}"}
    timeout = httpx.Timeout(120.0)
    release = threading.Event()

    def upload(i: int) -> httpx.Response:
        body, headers = _slow_upload_body(data, f"song{i}.wav", release)
        return httpx.post(
            f"{stack.url}/api/v1/voices/{voice['id']}/tracks",
            content=body,
            headers={**auth, **headers},
            timeout=timeout,
        )

    def read(_i: int) -> httpx.Response:
        return httpx.get(f"{stack.url}/api/v1/jobs/{job_id}", headers=auth, timeout=timeout)

    with ThreadPoolExecutor(max_workers=220) as pool:
        uploads = [pool.submit(upload, i) for i in range(20)]
        time.sleep(3)  # the uploads are authenticated and streaming
        try:
            read_answers = list(pool.map(read, range(200)))
        finally:
            release.set()
        up_answers = [f.result() for f in uploads]
    assert [r.status_code for r in read_answers] == [200] * 200, {
        r.status_code for r in read_answers
    }
    assert [r.status_code for r in up_answers] == [201] * 20, [r.text for r in up_answers]

    with stack.client("alice") as c:
        for r in up_answers:
            result = r.json()
            assert wait_job(c, result["job"]["id"], timeout=300)["status"] == "succeeded"
            (track,) = result["tracks"]
            for variant in ("original", "decoded"):
                got = c.get(f"/api/v1/tracks/{track['id']}/audio", params={"variant": variant})
                assert got.status_code == 200 and len(got.content) > 1000, variant


def test_open_event_streams_do_not_starve_other_requests(stack, tmp_path):
    with stack.client("alice") as c:
        voice = new_voice(c, "Streams")
        up = c.post(
            f"/api/v1/voices/{voice['id']}/tracks",
            files=[("files", ("s.wav", song(tmp_path / "s.wav", 1.0).read_bytes(), "audio/wav"))],
        )
        job_id = up.json()["job"]["id"]
        wait_job(c, job_id)
        # a long-lived job to stream: a queued training the test cancels at the end
        train = c.post(
            f"/api/v1/voices/{voice['id']}/train",
            json={"config": "tiny", "max_steps": 100000, "f0_method": "harvest", "ppg_model": None},
        )
        assert train.status_code == 202, train.text
        stream_job = train.json()["id"]
    headers = {"Authorization": f"Bearer {stack.tokens['alice']}"}
    opened = threading.Barrier(51)
    stop = threading.Event()
    stream_errors: list[str] = []

    def stream(_i: int) -> None:
        try:
            with httpx.stream(
                "GET",
                f"{stack.url}/api/v1/jobs/{stream_job}/events",
                headers=headers,
                timeout=httpx.Timeout(60.0),
            ) as r:
                if r.status_code != 200:
                    stream_errors.append(str(r.status_code))
                opened.wait(timeout=60)
                for _ in r.iter_raw():
                    if stop.is_set():
                        return
        except Exception as exc:  # noqa: BLE001 - reported below
            stream_errors.append(repr(exc))
            if not opened.broken:
                opened.abort()

    threads = [threading.Thread(target=stream, args=(i,), daemon=True) for i in range(50)]
    for t in threads:
        t.start()
    try:
        opened.wait(timeout=90)
        with ThreadPoolExecutor(max_workers=100) as pool:
            answers = list(
                pool.map(
                    lambda _i: httpx.get(
                        f"{stack.url}/api/v1/jobs/{job_id}", headers=headers, timeout=60.0
                    ),
                    range(100),
                )
            )
    finally:
        stop.set()
        with stack.client("alice") as c:
            c.post(f"/api/v1/jobs/{stream_job}/cancel")
            wait_job(c, stream_job, timeout=120)
        for t in threads:
            t.join(timeout=30)
    assert stream_errors == []
    assert [r.status_code for r in answers] == [200] * 100
