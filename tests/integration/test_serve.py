"""``svc-studio serve`` stops cleanly: on SIGTERM (a process manager's stop) or SIGINT (Ctrl+C)
it stops the API and the worker it started, which shuts down warm (it unregisters itself), and
exits 0 within seconds with nothing it started left running; when the API cannot start (its
port is taken) the worker goes too.

Each serve runs in a session of its own, so whatever it starts — the worker runs in a process
group of its own, inside that session — is found by session id in /proc."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from tests.common.services import sqlite_url
from tests.common.stack import ROOT, free_port, stack_env

START_TIMEOUT_S = 120  # imports on a loaded 2-core machine
STOP_TIMEOUT_S = 15


def _session_procs(sid: int) -> dict[int, tuple[int, int, str]]:
    """pid -> (ppid, pgid, state) of every process (zombies too) in session ``sid``."""
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:  # gone meanwhile
            continue
        # "pid (comm) state ppid pgrp session ...": comm may hold spaces and parentheses
        state, ppid, pgid, session = stat[stat.rindex(")") + 2 :].split()[:4]
        if int(session) == sid:
            found[int(entry)] = (int(ppid), int(pgid), state)
    return found


def _wait(cond, timeout: float, what: str, serve: subprocess.Popen, log: Path):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if serve.poll() is not None:
            pytest.fail(f"serve exited ({serve.returncode}) waiting for {what}:\n{log.read_text()}")
        try:
            value = cond()
        except (httpx.HTTPError, ValueError, KeyError):
            value = None
        if value:
            return value
        time.sleep(0.2)
    pytest.fail(f"timed out waiting for {what}:\n{log.read_text()}")


def _start_serve(
    tmp_path: Path, port: int, *args: str
) -> tuple[subprocess.Popen, Path, dict[str, str]]:
    data = tmp_path / "data"
    env = stack_env(data, sqlite_url(data / "svc.db"), "filesystem://")
    log = tmp_path / "serve.log"
    with log.open("ab") as out:
        serve = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "app.cli",
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                *args,
            ],
            env=env,
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return serve, log, env


def _assert_nothing_left(serve: subprocess.Popen, log: Path) -> None:
    # serve itself is reaped, and reaps its worker: anything here, zombies too, is left over
    left = _session_procs(serve.pid)
    assert left == {}, f"left after serve exited: {left}\n{log.read_text()}"
    with pytest.raises(ProcessLookupError):
        os.killpg(serve.pid, 0)


def _kill_all(sid: int) -> None:
    """Cleanup after a failed test: nothing of this serve outlives the test."""
    for pid in _session_procs(sid):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _wait_for_worker(serve: subprocess.Popen, port: int, log: Path) -> int:
    """Wait until the API answers and lists the worker; return the worker's pid."""
    url = f"http://127.0.0.1:{port}/api/v1/health"
    workers = _wait(
        lambda: httpx.get(url, timeout=5).json()["workers"],
        START_TIMEOUT_S,
        "the API and a live worker",
        serve,
        log,
    )
    assert len(workers) == 1, workers
    procs = _session_procs(serve.pid)
    children = [pid for pid, (ppid, _, _) in procs.items() if ppid == serve.pid]
    assert len(children) == 1, procs
    # the worker runs in a process group of its own: Ctrl+C in a terminal reaches serve only,
    # and serve decides how the worker stops
    assert os.getpgid(children[0]) == children[0]
    return children[0]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_serve_stops_its_worker_and_exits_on_signal(tmp_path, sig):
    port = free_port()
    serve, log, env = _start_serve(tmp_path, port)
    try:
        _wait_for_worker(serve, port, log)

        t0 = time.monotonic()
        serve.send_signal(sig)  # the process only, as docker stop / systemctl stop do
        code = serve.wait(timeout=STOP_TIMEOUT_S)
        elapsed = time.monotonic() - t0
        sys.stderr.write(f"serve stopped {elapsed:.1f}s after {sig.name}\n")
        assert code == 0, log.read_text()
        _assert_nothing_left(serve, log)

        # the worker had its warm shutdown: it unregistered itself
        from app.core.db import crud
        from app.core.db.models import utcnow
        from app.core.db.session import session_scope

        with session_scope(env["SVC_DATABASE_URL"]) as s:
            assert crud.live_workers(s, since=utcnow() - timedelta(days=1)) == []
    finally:
        _kill_all(serve.pid)
        if serve.poll() is None:
            serve.kill()
            serve.wait()


def test_serve_stops_its_worker_when_the_api_cannot_start(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        serve, log, _ = _start_serve(tmp_path, port)
        try:
            code = serve.wait(timeout=START_TIMEOUT_S)
            assert code != 0, log.read_text()  # uvicorn: 3 (startup failure)
            assert "address already in use" in log.read_text()
            _assert_nothing_left(serve, log)
        finally:
            _kill_all(serve.pid)
            if serve.poll() is None:
                serve.kill()
                serve.wait()


def test_serve_without_worker_stops_on_sigterm(tmp_path):
    port = free_port()
    serve, log, _ = _start_serve(tmp_path, port, "--no-worker")
    try:
        url = f"http://127.0.0.1:{port}/api/v1/health"
        health = _wait(lambda: httpx.get(url, timeout=5).json(), START_TIMEOUT_S, "API", serve, log)
        assert health["workers"] == []
        assert list(_session_procs(serve.pid)) == [serve.pid]  # no worker started
        serve.send_signal(signal.SIGTERM)
        assert serve.wait(timeout=STOP_TIMEOUT_S) == 0, log.read_text()
        _assert_nothing_left(serve, log)
    finally:
        _kill_all(serve.pid)
        if serve.poll() is None:
            serve.kill()
            serve.wait()


def test_worker_stops_when_serve_is_killed(tmp_path):
    """SIGKILL (or the OOM killer) leaves serve no chance to stop its worker: the worker is
    sent SIGTERM when its parent dies and shuts down warm by itself."""
    port = free_port()
    serve, log, _ = _start_serve(tmp_path, port)
    try:
        _wait_for_worker(serve, port, log)
        serve.kill()
        serve.wait(timeout=10)
        # the orphaned worker's zombie is init's to reap: only a running process counts
        deadline = time.monotonic() + STOP_TIMEOUT_S
        while time.monotonic() < deadline:
            running = {p: v for p, v in _session_procs(serve.pid).items() if v[2] != "Z"}
            if not running:
                break
            time.sleep(0.2)
        assert running == {}, f"left running after serve was killed: {running}\n{log.read_text()}"
    finally:
        _kill_all(serve.pid)


def test_serve_restarts_a_worker_that_died(tmp_path):
    """A worker killed from outside (the OOM killer, a crash) is replaced: a new worker process
    starts and beats, and serve still stops cleanly afterwards."""
    from app.core.db import crud
    from app.core.db.models import utcnow
    from app.core.db.session import session_scope

    port = free_port()
    serve, log, env = _start_serve(tmp_path, port)
    try:
        first = _wait_for_worker(serve, port, log)
        # the terminal: once the worker is ready, the URL and token are printed again as the
        # last lines; the worker's banner and logs go to a file instead
        _wait(lambda: "the worker is ready" in log.read_text(), 30, "the ready line", serve, log)
        shown = log.read_text()
        tail = shown[shown.index("the worker is ready") :]
        assert f"running at http://127.0.0.1:{port}/" in tail and "access token" in tail
        assert "[tasks]" not in shown and "celery@" not in shown, shown  # no Celery banner
        assert (tmp_path / "data" / "logs" / "worker.log").is_file()
        killed_at = utcnow()
        os.kill(first, signal.SIGKILL)

        def replacement() -> int | None:
            procs = _session_procs(serve.pid)
            new = [
                p
                for p, (ppid, _, state) in procs.items()
                if ppid == serve.pid and p != first and state != "Z"
            ]
            return new[0] if new else None

        second = _wait(replacement, START_TIMEOUT_S, "a new worker process", serve, log)
        assert os.getpgid(second) == second

        def beating_since_the_kill() -> list:
            with session_scope(env["SVC_DATABASE_URL"]) as s:  # a fresh snapshot each time
                return crud.live_workers(s, since=killed_at)

        _wait(beating_since_the_kill, START_TIMEOUT_S, "the new worker's heartbeat", serve, log)
        assert "worker killed by SIGKILL" in log.read_text()
        _wait(lambda: "the new worker is ready" in log.read_text(), 30, "ready", serve, log)
        serve.send_signal(signal.SIGTERM)
        assert serve.wait(timeout=STOP_TIMEOUT_S) == 0, log.read_text()
        _assert_nothing_left(serve, log)
    finally:
        _kill_all(serve.pid)
        if serve.poll() is None:
            serve.kill()
            serve.wait()


@pytest.mark.parametrize(("crashes", "delay"), [(0, 0.0), (1, 1.0), (2, 5.0), (9, 30.0)])
def test_a_worker_that_keeps_dying_is_restarted_ever_more_slowly(crashes, delay):
    from app.cli import restart_delay

    assert restart_delay(crashes) == delay
