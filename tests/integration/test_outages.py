"""The API and workers when the database or the broker misbehave: a plain 503 (never a 500),
nothing half-stored, and queued work that survives a broker outage.

Each test starts its own small stack over HTTP with the part to break under its control: a
SQLite file whose write lock the test holds, a PostgreSQL URL nobody listens on, a Redis
server the test stops and starts again.
"""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from app.core.db.session import get_engine
from tests.common.audio_files import song
from tests.common.services import sqlite_url
from tests.common.stack import Stack, free_port, stack_env, wait_job


def make_stack(tmp_path: Path, db_url: str, broker_url: str = "filesystem://", **extra) -> Stack:
    data = tmp_path / "data"
    logs = tmp_path / "logs"
    logs.mkdir(parents=True)
    return Stack(env=stack_env(data, db_url, broker_url, **extra), data_dir=data, log_dir=logs)


def stored_files(stack: Stack) -> list[Path]:
    root = stack.data_dir / "storage"
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


def test_locked_sqlite_gives_503_with_retry_after_and_changes_nothing(tmp_path):
    db = tmp_path / "svc.db"
    # the API gives up on another process's write lock after 0.5 s instead of 30 s
    s = make_stack(tmp_path, sqlite_url(db) + "?timeout=0.5")
    try:
        s.create_user("alice")
        s.start_api()
        with s.client("alice") as c:
            voice = c.post("/api/v1/voices", json={"name": "Before"}).json()
            wav = song(tmp_path / "take.wav", seconds=2)
            before = stored_files(s)

            holder = sqlite3.connect(db, timeout=0.1, isolation_level=None)
            holder.execute("BEGIN IMMEDIATE")  # another process holds the write lock
            try:
                r = c.post("/api/v1/voices", json={"name": "During"})
                assert r.status_code == 503, r.text
                assert "database is busy" in r.json()["detail"]
                assert int(r.headers["retry-after"]) > 0
                up = c.post(
                    f"/api/v1/voices/{voice['id']}/tracks",
                    files=[("files", (wav.name, wav.read_bytes(), "audio/wav"))],
                )
                assert up.status_code == 503, up.text
                # readers are not blocked by a writer (WAL)
                assert c.get(f"/api/v1/voices/{voice['id']}").status_code == 200
            finally:
                holder.execute("ROLLBACK")
                holder.close()

            names = [v["name"] for v in c.get("/api/v1/voices").json()]
            assert names == ["Before"]
            assert c.get(f"/api/v1/voices/{voice['id']}/tracks").json() == []
            assert stored_files(s) == before, "the refused upload left files behind"
            assert c.post("/api/v1/voices", json={"name": "After"}).status_code == 201
    finally:
        s.stop()
        get_engine(sqlite_url(db)).dispose()


def test_full_storage_gives_507_and_keeps_nothing(tmp_path):
    """The API process may not write files past 2 MiB (RLIMIT_FSIZE: the kernel answers
    EFBIG, as a full disk answers ENOSPC): a bigger upload is refused with 507 and leaves
    nothing behind; a small one still works; what was stored before is untouched."""
    import resource

    db = tmp_path / "svc.db"
    s = make_stack(tmp_path, sqlite_url(db))
    try:
        s.create_user("alice")
        s.start_api()
        with s.client("alice") as c:
            voice = c.post("/api/v1/voices", json={"name": "Full"}).json()
            small = song(tmp_path / "small.wav", seconds=2)
            first = c.post(
                f"/api/v1/voices/{voice['id']}/tracks",
                files=[("files", (small.name, small.read_bytes(), "audio/wav"))],
            )
            assert first.status_code == 201, first.text
            before = {p: p.read_bytes() for p in stored_files(s)}

            limit = 2 * 1024 * 1024
            resource.prlimit(s.api.pid, resource.RLIMIT_FSIZE, (limit, limit))
            big = song(tmp_path / "big.wav", seconds=30)  # 16-bit 44.1 kHz: 2.6 MB
            assert big.stat().st_size > limit
            r = c.post(
                f"/api/v1/voices/{voice['id']}/tracks",
                files=[("files", (big.name, big.read_bytes(), "audio/wav"))],
            )
            assert r.status_code == 507, r.text
            assert "ran out of storage space" in r.json()["detail"]
            assert "big.wav" in r.json()["detail"]

            tracks = c.get(f"/api/v1/voices/{voice['id']}/tracks").json()
            assert [t["filename"] for t in tracks] == ["small.wav"]
            assert {p: p.read_bytes() for p in stored_files(s)} == before
            again = c.post(
                f"/api/v1/voices/{voice['id']}/tracks",
                files=[("files", ("again.wav", small.read_bytes(), "audio/wav"))],
            )
            assert again.status_code == 201, again.text
    finally:
        s.stop()
        get_engine(sqlite_url(db)).dispose()


def test_unreachable_postgresql_gives_503_not_500(tmp_path):
    url = f"postgresql+psycopg://svc@127.0.0.1:{free_port()}/nothing?connect_timeout=2"
    s = make_stack(tmp_path, url)
    try:
        s.start_api(healthy=False)
        with httpx.Client(base_url=s.url, timeout=30) as c:
            h = c.get("/api/v1/health")
            assert h.status_code == 503 and h.json()["database"].startswith("error")
            r = c.get("/api/v1/voices", headers={"Authorization": "Bearer svc_whatever"})
            assert r.status_code == 503, r.text
            assert "unreachable" in r.json()["detail"] and "retry-after" in r.headers
    finally:
        s.stop()


@pytest.fixture
def redis_server(tmp_path) -> Iterator[dict]:
    """A Redis server of the test's own (no persistence), which the test can stop and start."""
    exe = shutil.which("redis-server")
    if exe is None:
        pytest.skip("redis-server is not installed")
    port = free_port()
    procs: list[subprocess.Popen] = []

    def start() -> None:
        procs.append(
            subprocess.Popen(
                [exe, "--port", str(port), "--save", "", "--appendonly", "no"],
                cwd=tmp_path,
                stdout=subprocess.DEVNULL,
            )
        )
        import redis

        deadline = time.monotonic() + 15
        while True:
            try:
                redis.Redis(port=port, socket_connect_timeout=1).ping()
                return
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def stop() -> None:
        for p in procs:
            if p.poll() is None:
                p.terminate()
                p.wait(timeout=10)

    start()
    yield {"url": f"redis://127.0.0.1:{port}/0", "start": start, "stop": stop}
    stop()


def test_upload_while_the_broker_is_down_runs_once_it_is_back(tmp_path, redis_server):
    db = tmp_path / "svc.db"
    s = make_stack(tmp_path, sqlite_url(db), redis_server["url"], SVC_REDISPATCH_AFTER_S="1")
    try:
        s.create_user("alice")
        s.start_api()
        s.start_worker()
        s.wait_for_worker()
        with s.client("alice") as c:
            voice = c.post("/api/v1/voices", json={"name": "Outage"}).json()
            redis_server["stop"]()
            wav = song(tmp_path / "take.wav", seconds=2)
            r = c.post(
                f"/api/v1/voices/{voice['id']}/tracks",
                files=[("files", (wav.name, wav.read_bytes(), "audio/wav"))],
                data={"vocals_only": "true"},
            )
            # accepted and kept: the track is stored, the job waits for the queue
            assert r.status_code == 201, r.text
            job = r.json()["job"]
            assert job["status"] == "queued" and "broker is unreachable" in job["message"]
            assert c.get("/api/v1/health").json()["broker"].startswith("error")
            tracks = c.get(f"/api/v1/voices/{voice['id']}/tracks").json()
            assert [t["filename"] for t in tracks] == ["take.wav"]
            time.sleep(2)
            assert c.get(f"/api/v1/jobs/{job['id']}").json()["status"] == "queued"

            redis_server["start"]()
            # the worker reconnects; its sweep sends the unsent job; the job runs once
            done = wait_job(c, job["id"], timeout=120)
            assert done["status"] == "succeeded", done
            assert done["attempts"] == 1
            assert c.get(f"/api/v1/tracks/{tracks[0]['id']}").json()["status"] == "ready"
    finally:
        s.stop()
        get_engine(sqlite_url(db)).dispose()


def test_a_queued_job_whose_message_redis_lost_is_sent_again(tmp_path, redis_server):
    """The broker took the message, then Redis restarted empty before any worker read it:
    the workers' sweep sends it again (after SVC_RESEND_AFTER_S) and the job runs once."""
    db = tmp_path / "svc.db"
    s = make_stack(tmp_path, sqlite_url(db), redis_server["url"], SVC_RESEND_AFTER_S="3")
    try:
        s.create_user("alice")
        s.start_api()
        with s.client("alice") as c:
            voice = c.post("/api/v1/voices", json={"name": "Lost"}).json()
            wav = song(tmp_path / "take.wav", seconds=2)
            r = c.post(
                f"/api/v1/voices/{voice['id']}/tracks",
                files=[("files", (wav.name, wav.read_bytes(), "audio/wav"))],
                data={"vocals_only": "true"},
            )
            assert r.status_code == 201, r.text
            job = r.json()["job"]
            assert job["status"] == "queued"
            # no worker yet; Redis loses everything it held
            redis_server["stop"]()
            redis_server["start"]()
            s.start_worker()
            s.wait_for_worker()
            done = wait_job(c, job["id"], timeout=120)
            assert done["status"] == "succeeded", done
            assert done["attempts"] == 1
    finally:
        s.stop()
        get_engine(sqlite_url(db)).dispose()
