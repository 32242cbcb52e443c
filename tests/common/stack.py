"""A running svc-studio for tests: the API under uvicorn and Celery workers as real
subprocesses, on SQLite + filesystem broker or PostgreSQL + Redis; its environment
(:func:`stack_env`) and the HTTP helpers the integration and browser tests share."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from app.cli import worker_argv

ROOT = Path(__file__).resolve().parents[2]


def stack_env(data_dir, db_url: str, broker_url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SVC_")}
    env.update(
        {
            "SVC_ENVIRONMENT": "test",
            "SVC_DATA_DIR": str(data_dir),
            "SVC_MODELS_DIR": str(data_dir / "models"),
            "SVC_DATABASE_URL": db_url,
            "SVC_BROKER_URL": broker_url,
            "SVC_HEARTBEAT_INTERVAL_S": "0.5",
            "SVC_HEARTBEAT_TIMEOUT_S": "3",
            "SVC_WATCHDOG_INTERVAL_S": "1",
            "SVC_PROGRESS_MIN_INTERVAL_S": "0.1",
            "SVC_MAX_UPLOAD_BYTES": str(8 * 1024 * 1024),
            "SVC_MAX_AUDIO_SECONDS": "120",
            # webhooks may call the tests' loopback receivers (and nothing else)
            "SVC_WEBHOOK_ALLOW_HOSTS": "127.0.0.1",
            "PYTHONPATH": str(ROOT),
        }
    )
    env.update(extra)
    return env


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Stack:
    env: dict[str, str]
    data_dir: Path
    log_dir: Path
    port: int = field(default_factory=free_port)
    api: subprocess.Popen | None = None
    workers: list[subprocess.Popen] = field(default_factory=list)
    tokens: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _run(self, *args: str) -> str:
        out = subprocess.run(
            [sys.executable, "-m", "app.cli", *args],
            env=self.env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )
        if out.returncode != 0:
            raise RuntimeError(f"svc-studio {' '.join(args)} failed: {out.stderr}")
        return out.stdout.strip()

    def create_user(self, name: str) -> str:
        token = self._run("users", "create", name).splitlines()[-1]
        self.tokens[name] = token
        return token

    def start_api(self, healthy: bool = True) -> None:
        """Start uvicorn; wait until health answers below 500 (or, when the test breaks the
        database or broker on purpose, ``healthy=False``: until it answers at all)."""
        log = open(self.log_dir / "api.log", "ab")  # noqa: SIM115 - lives with the process
        self.api = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "--factory",
                "app.api.main:app_factory",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--log-level",
                "warning",
            ],
            env=self.env,
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        self.wait_for(
            lambda: self._get_ok("/api/v1/health", any_status=not healthy), 60, "API start"
        )

    def start_worker(self, queues: str = "cpu,gpu") -> subprocess.Popen:
        n = len(self.workers)
        log = open(self.log_dir / f"worker{n}.log", "ab")  # noqa: SIM115
        proc = subprocess.Popen(
            # the command `svc-studio worker` runs, with a node name per test worker
            worker_argv(queues, name=f"test{n}-{os.getpid()}@%h"),
            env=self.env,
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        self.workers.append(proc)
        return proc

    def wait_for_worker(self, timeout: float = 90) -> None:
        def ready() -> bool:
            r = httpx.get(f"{self.url}/api/v1/health", timeout=5)
            return r.status_code == 200 and r.json()["queues_without_workers"] == []

        self.wait_for(ready, timeout, "worker ready")

    def _get_ok(self, path: str, any_status: bool = False) -> bool:
        try:
            code = httpx.get(self.url + path, timeout=10).status_code
            return any_status or code < 500
        except httpx.HTTPError:
            return False

    def wait_for(self, cond, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if cond():
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise TimeoutError(f"timed out waiting for {what}; logs in {self.log_dir}")

    def client(self, user: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.tokens[user]}"} if user else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=60)

    def kill_worker(self, proc: subprocess.Popen) -> None:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)

    def stop(self) -> None:
        for p in [*self.workers, self.api]:
            if p is not None and p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in [*self.workers, self.api]:
            if p is None:
                continue
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


def wait_job(
    client: httpx.Client,
    job_id: str,
    timeout: float = 120,
    statuses: tuple[str, ...] = ("succeeded", "failed", "cancelled"),
) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.get(f"/api/v1/jobs/{job_id}").json()
        if job["status"] in statuses:
            return job
        time.sleep(0.1)
    raise TimeoutError(f"job {job_id} still {job['status']} ({job.get('message')})")


@contextmanager
def no_worker(stack: Stack) -> Iterator[None]:
    """Stop the stack's workers (a warm shutdown: they unregister and leave no transaction
    open) so new jobs stay queued; afterwards start a fresh worker and wait until it serves
    every queue. Freezing a worker with SIGSTOP instead can freeze it inside a SQLite write
    transaction (its heartbeat), which locks every other writer out."""
    for proc in stack.workers:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    for proc in stack.workers:
        proc.wait(timeout=30)
    try:
        yield
    finally:
        stack.start_worker()
        stack.wait_for_worker()


def upload(
    client: httpx.Client,
    voice_id: str,
    files: list[Path | tuple[str, bytes]],
    vocals_only: bool = False,
) -> httpx.Response:
    parts = []
    for f in files:
        name, data = (f.name, f.read_bytes()) if isinstance(f, Path) else f
        parts.append(("files", (name, data, "application/octet-stream")))
    return client.post(
        f"/api/v1/voices/{voice_id}/tracks",
        files=parts,
        data={"vocals_only": str(vocals_only).lower()},
    )


def new_voice(client: httpx.Client, name: str = "Singer") -> dict:
    r = client.post("/api/v1/voices", json={"name": name})
    assert r.status_code == 201, r.text
    return r.json()
