"""``svc-studio``: the service commands (serve, worker, users, db) plus the engine commands
of ``svc_core.cli`` (separate, slice, train, convert, …), all loaded lazily."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

import click

from svc_core.cli import ENGINE_COMMANDS, LazyGroup


@click.group(cls=LazyGroup, lazy=ENGINE_COMMANDS)
@click.version_option("0.1.0", prog_name="svc-studio")
def main() -> None:
    """svc-studio: singing voice conversion studio (service and engine commands)."""


# --- database -----------------------------------------------------------------------------


def upgrade_db(database_url: str) -> None:
    """Bring the database schema to the latest migration."""
    from alembic import command
    from alembic.config import Config

    from migrations import alembic_config_path

    if database_url.startswith("sqlite:///"):
        from pathlib import Path

        Path(database_url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    cfg = Config(str(alembic_config_path()))
    cfg.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    command.upgrade(cfg, "head")


@main.group()
def db() -> None:
    """Database schema commands."""


@db.command("upgrade")
def db_upgrade() -> None:
    """Apply all migrations (alembic upgrade head)."""
    from app.core.config import get_settings

    upgrade_db(get_settings().database_url)
    click.echo("database is up to date")


# --- users --------------------------------------------------------------------------------


@main.group()
def users() -> None:
    """Manage users and their API tokens."""


@users.command("create")
@click.argument("name")
def users_create(name: str) -> None:
    """Create a user and print a new API token (shown once)."""
    from app.core.config import get_settings
    from app.core.db import crud
    from app.core.db.session import session_scope

    settings = get_settings()
    upgrade_db(settings.database_url)
    with session_scope(settings.database_url) as s:
        if crud.get_user_by_name(s, name=name) is not None:
            raise click.ClickException(f"user '{name}' already exists (use `users token {name}`)")
        user = crud.create_user(s, name=name)
        token = crud.create_token(s, user=user, pepper=settings.token_pepper, name="cli")
    click.echo(token)


@users.command("token")
@click.argument("name")
def users_token(name: str) -> None:
    """Print a new API token for an existing user."""
    from app.core.config import get_settings
    from app.core.db import crud
    from app.core.db.session import session_scope

    settings = get_settings()
    with session_scope(settings.database_url) as s:
        user = crud.get_user_by_name(s, name=name)
        if user is None:
            raise click.ClickException(f"no user named '{name}'")
        click.echo(crud.create_token(s, user=user, pepper=settings.token_pepper, name="cli"))


@users.command("list")
def users_list() -> None:
    from app.core.config import get_settings
    from app.core.db import crud
    from app.core.db.session import session_scope

    settings = get_settings()
    with session_scope(settings.database_url) as s:
        for u in crud.list_users(s):
            click.echo(f"{u.name}\t{u.id}\t{u.created_at:%Y-%m-%d}")


# --- processes ----------------------------------------------------------------------------


def worker_argv(
    queues: str, loglevel: str = "INFO", name: str | None = None, quiet: bool = False
) -> list[str]:
    # solo pool: one task at a time per process (one per GPU), models stay loaded between
    # tasks, and cancellation is cooperative through the job row. quiet: no start-up banner.
    return [
        sys.executable,
        "-m",
        "celery",
        *(["--quiet"] if quiet else []),
        "-A",
        "worker.celery_app",
        "worker",
        "--pool=solo",
        "-Q",
        queues,
        f"--loglevel={loglevel}",
        "--without-gossip",
        "--without-mingle",
        "-n",
        name or f"svc-{queues.replace(',', '-')}-%h-{os.getpid()}",
    ]


@main.command()
@click.option(
    "--queues",
    "-Q",
    default="cpu,gpu",
    show_default=True,
    help="Queues to consume (cpu, gpu or both).",
)
@click.option("--loglevel", default="INFO", show_default=True)
def worker(queues: str, loglevel: str) -> None:
    """Run a Celery worker (one task at a time)."""
    os.execv(sys.executable, worker_argv(queues, loglevel))


@main.command()
@click.option("--host", default=None, help="Defaults to SVC_HOST (127.0.0.1).")
@click.option("--port", default=None, type=int, help="Defaults to SVC_PORT (8000).")
def api(host: str | None, port: int | None) -> None:
    """Run only the HTTP API."""
    import uvicorn

    from app.core.config import get_settings

    settings = get_settings()
    upgrade_db(settings.database_url)
    uvicorn.run(
        "app.api.main:app_factory",
        factory=True,
        host=host or settings.host,
        port=port or settings.port,
        log_level="info",
    )


def _admin_token(settings) -> tuple[str, bool]:
    """The embedded admin user's token, created on first start and kept in the data folder
    (mode 0600) so every start can print it. Returns (token, created)."""
    from app.core.db import crud
    from app.core.db.session import session_scope

    path = settings.data_dir / ".admin-token"
    with session_scope(settings.database_url) as s:
        if path.is_file():
            token = path.read_text().strip()
            if crud.user_for_token(s, token=token, pepper=settings.token_pepper) is not None:
                return token, False
        user = crud.get_user_by_name(s, name="admin") or crud.create_user(s, name="admin")
        token = crud.create_token(s, user=user, pepper=settings.token_pepper, name="serve")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(token + "\n")
    return token, True


# How long `serve` gives its worker's warm shutdown (the running stage stops at its next check
# and the job is re-queued) before it kills the worker, and uvicorn the open requests (job event
# streams stay open until their job ends) before it cancels them: a stop ends in ~10 s.
WORKER_STOP_GRACE_S = 10.0
API_SHUTDOWN_GRACE_S = 5


def _signal_when_parent_dies(sig: int) -> Callable[[], None] | None:
    """A ``preexec_fn`` that has the child sent ``sig`` when its parent dies without stopping
    it (SIGKILL, the OOM killer): Linux's ``PR_SET_PDEATHSIG``. None where there is none."""
    if not sys.platform.startswith("linux"):
        return None
    import ctypes

    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    parent = os.getpid()

    def preexec() -> None:
        prctl(1, ctypes.c_ulong(sig))  # PR_SET_PDEATHSIG
        if os.getppid() != parent:  # the parent died before that took effect
            os.kill(os.getpid(), sig)

    return preexec


class _Worker:
    """The worker ``serve`` starts, in a process group of its own: a Ctrl+C in the terminal
    reaches serve only, which decides how the worker stops, and the group holds whatever the
    worker starts. The worker gets SIGTERM if serve dies without stopping it. It is reaped only
    in :meth:`stop`, so until then its pid (and its group's id) cannot be reused and signalling
    it is safe."""

    def __init__(self, argv: list[str], log_path: Path | None = None) -> None:
        """``log_path``: append the worker's output there (else it shares serve's)."""
        out = None
        if log_path is not None:
            log_path.parent.mkdir(parents=True, exist_ok=True)
            out = log_path.open("ab")
        try:
            self.proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT if out is not None else None,
                process_group=0,
                preexec_fn=_signal_when_parent_dies(signal.SIGTERM),
            )
        finally:
            if out is not None:
                out.close()  # the child holds its own copy
        self.deadline: float | None = None

    def request_stop(self) -> None:
        """First call: Celery's warm shutdown (SIGTERM), whose worker_shutting_down signal sets
        the runtime's SHUTDOWN: the running stage stops at its next check, saves what it can
        and the job is re-queued. Later calls: Celery's cold shutdown (SIGQUIT)."""
        first = self.deadline is None
        if first:
            self.deadline = time.monotonic() + WORKER_STOP_GRACE_S
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.proc.pid, signal.SIGTERM if first else signal.SIGQUIT)

    def _exited(self) -> bool:
        # WNOWAIT: the worker stays a zombie, its pid and group id taken, until killpg below
        flags = os.WEXITED | os.WNOHANG | os.WNOWAIT
        return os.waitid(os.P_PID, self.proc.pid, flags) is not None

    def stop(self) -> None:
        """Stop the worker (warm, then SIGKILL once the grace period is over), kill anything
        left in its process group and reap it."""
        if self.deadline is None:
            self.request_stop()
        assert self.deadline is not None
        while not self._exited() and time.monotonic() < self.deadline:
            time.sleep(0.1)
        stuck = not self._exited()
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        code = self.proc.wait()
        if stuck:
            click.echo(f"  worker did not stop within {WORKER_STOP_GRACE_S:.0f}s: killed", err=True)
        elif code not in (0, -signal.SIGTERM):  # -SIGTERM: stopped before it was ready
            click.echo(f"  worker exited with status {code}", err=True)

    def reap(self) -> int:
        """After the worker exited by itself: kill what it left in its group, reap it."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        return self.proc.wait()


# A worker that dies (a crash, the OOM killer) is started again at once; one that keeps dying
# soon after it started waits longer each time. One that ran WORKER_STABLE_S counts as healthy.
WORKER_RESTART_DELAYS_S = (0.0, 1.0, 5.0, 15.0, 30.0)
WORKER_STABLE_S = 120.0


def restart_delay(quick_crashes: int) -> float:
    """Seconds before starting a worker again after ``quick_crashes`` deaths in a row, each
    within WORKER_STABLE_S of its start (0 = it had run long enough: no wait)."""
    return WORKER_RESTART_DELAYS_S[min(quick_crashes, len(WORKER_RESTART_DELAYS_S) - 1)]


def _exit_words(code: int) -> str:
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exited with status {code}"


def _log_tail(path: Path | None, lines: int = 8) -> str:
    """The last lines of a log (what a crashed worker said last), indented; "" if none."""
    if path is None or not path.is_file():
        return ""
    with path.open("rb") as fh:
        fh.seek(0, os.SEEK_END)
        fh.seek(max(0, fh.tell() - 8192))
        text = fh.read().decode("utf-8", "replace")
    return "\n".join("    " + ln for ln in text.splitlines()[-lines:])


class _SupervisedWorker:
    """The worker ``serve`` keeps running: a thread watches it and starts a new one when it
    dies without being asked to stop. The job it was running is re-queued by the next
    worker's watchdog once its heartbeat is stale (SVC_HEARTBEAT_TIMEOUT_S) and resumes from
    its last checkpoint. Stopping (:meth:`request_stop`, :meth:`stop`) ends the watching
    first, so a worker that exits because it was told to is never replaced."""

    def __init__(
        self,
        argv: list[str],
        poll_s: float = 0.5,
        *,
        log_path: Path | None = None,
        is_ready: Callable[[int], bool] | None = None,
        on_ready: Callable[[int], None] | None = None,
    ) -> None:
        """``is_ready(pid)``: whether that worker process is serving (polled until it is);
        ``on_ready(restarts)`` is called once per worker when it is."""
        self.argv = argv
        self.poll_s = poll_s
        self.log_path = log_path
        self.restarts = 0
        self._is_ready = is_ready
        self._on_ready = on_ready
        self._lock = threading.RLock()  # RLock: a second signal may arrive inside the first
        self._stopping = threading.Event()
        self._current: _Worker | None = _Worker(argv, log_path)
        self._started = time.monotonic()
        self._announced = False
        self._quick_crashes = 0
        self._thread = threading.Thread(target=self._watch, name="worker-watch", daemon=True)
        self._thread.start()

    def _check_ready(self) -> None:
        if self._announced or self._is_ready is None or self._current is None:
            return
        try:
            ready = self._is_ready(self._current.proc.pid)
        except Exception:  # noqa: BLE001 - the database may be busy: ask again next time
            return
        if ready:
            self._announced = True
            if self._on_ready is not None:
                self._on_ready(self.restarts)

    @property
    def pid(self) -> int | None:
        with self._lock:
            return self._current.proc.pid if self._current is not None else None

    def _watch(self) -> None:
        while not self._stopping.wait(self.poll_s):
            with self._lock:
                if self._stopping.is_set() or self._current is None:
                    continue
                if not self._current._exited():
                    self._check_ready()
                    continue
                code = self._current.reap()
                self._current = None
            ran = time.monotonic() - self._started
            self._quick_crashes = self._quick_crashes + 1 if ran < WORKER_STABLE_S else 0
            delay = restart_delay(self._quick_crashes)
            click.echo(
                f"  worker {_exit_words(code)} after {ran:.0f}s; starting a new one"
                + (f" in {delay:.0f}s" if delay else ""),
                err=True,
            )
            tail = _log_tail(self.log_path)
            if tail:
                click.echo(f"  its last lines ({self.log_path}):\n{tail}", err=True)
            if self._stopping.wait(delay):
                return
            with self._lock:
                if self._stopping.is_set():
                    return
                self._current = _Worker(self.argv, self.log_path)
                self._started = time.monotonic()
                self._announced = False
                self.restarts += 1

    def request_stop(self) -> None:
        self._stopping.set()
        with self._lock:
            if self._current is not None:
                self._current.request_stop()

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join(timeout=5)
        with self._lock:
            if self._current is not None:
                self._current.stop()
                self._current = None


class _Shutdown:
    """SIGTERM/SIGINT while ``serve`` runs: the first asks uvicorn to finish its requests and
    the worker for a warm shutdown; another one forces both. Installed as the process's
    handler and as uvicorn's ``handle_exit``, which uvicorn installs while it serves: then
    uvicorn records no signal of its own, so it re-raises none once it is done (it would kill
    serve with SIGTERM's default action before the worker is stopped)."""

    def __init__(self) -> None:
        self.signals = 0
        self.server: Any = None  # uvicorn.Server
        self.worker: _SupervisedWorker | None = None

    def __call__(self, sig: int, frame: FrameType | None = None) -> None:
        self.signals += 1
        if self.server is not None:
            self.server.should_exit = True
            if self.signals > 1:
                self.server.force_exit = True
        if self.worker is not None:
            self.worker.request_stop()


def _api_server(host: str, port: int, on_signal: _Shutdown, verbose: bool = False) -> Any:
    import uvicorn

    class Server(uvicorn.Server):
        def handle_exit(self, sig: int, frame: FrameType | None) -> None:
            on_signal(sig, frame)

    config = uvicorn.Config(
        "app.api.main:app_factory",
        factory=True,
        host=host,
        port=port,
        log_level="info" if verbose else "warning",
        timeout_graceful_shutdown=API_SHUTDOWN_GRACE_S,
    )
    return Server(config)


def _worker_serving(database_url: str, pid: int) -> bool:
    """Whether the worker process ``pid`` on this host has registered its heartbeat."""
    import socket

    from sqlalchemy import select

    from app.core.db.models import WorkerBeat
    from app.core.db.session import session_scope

    with session_scope(database_url) as s:
        found = s.scalar(
            select(WorkerBeat.name).where(
                WorkerBeat.pid == pid, WorkerBeat.hostname == socket.gethostname()
            )
        )
    return found is not None


def _banner(url: str, token: str, settings: Any, worker_log: Path | None) -> str:
    lines = [
        "",
        f"  svc-studio is running at {url}/  (API docs: {url}/docs)",
        f"  access token (user 'admin'): {token}",
        f"  data: {settings.data_dir}   database: {settings.database_url}",
    ]
    if worker_log is not None:
        lines.append(f"  worker log: {worker_log}  (serve --verbose shows it here)")
    return "\n".join([*lines, ""])


@main.command()
@click.option("--host", default=None, help="Defaults to SVC_HOST (127.0.0.1).")
@click.option("--port", default=None, type=int, help="Defaults to SVC_PORT (8000).")
@click.option("--no-worker", is_flag=True, help="Do not start a worker process.")
@click.option(
    "--verbose",
    "-v",
    is_flag=True,
    help="Show the worker's log and every request here (default: the worker logs to "
    "<data>/logs/worker.log and only warnings reach the terminal).",
)
def serve(host: str | None, port: int | None, no_worker: bool, verbose: bool) -> None:
    """Start the API and one worker on this machine (embedded defaults: SQLite, local storage,
    a filesystem broker — nothing else to install). Prints the URL and an access token, and
    prints them again once the worker is ready (so they are the last lines on screen).

    A worker that dies is started again (after a pause when it keeps dying). SIGTERM or
    SIGINT stops both: the worker shuts down warm (its running job is re-queued) within 10 s
    or is killed, and serve exits 0."""
    from app.core.config import get_settings

    settings = get_settings()
    if host:
        os.environ["SVC_HOST"] = host
    if port:
        os.environ["SVC_PORT"] = str(port)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    upgrade_db(settings.database_url)
    token, _ = _admin_token(settings)
    host, port = host or settings.host, port or settings.port
    url = f"http://{host}:{port}"
    worker_log = None if verbose or no_worker else settings.data_dir / "logs" / "worker.log"
    banner = _banner(url, token, settings, worker_log)
    shutdown = _Shutdown()
    shutdown.server = _api_server(host, port, shutdown, verbose=verbose)

    def ready(restarts: int) -> None:
        if restarts == 0:
            click.echo("  the worker is ready." + banner)
        else:
            click.echo("  the new worker is ready.", err=True)

    # from here on a signal stops what serve started instead of killing serve alone
    previous = {sig: signal.signal(sig, shutdown) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        click.echo(banner)
        if not no_worker:
            argv = worker_argv("cpu,gpu", "INFO" if verbose else "WARNING", quiet=not verbose)
            shutdown.worker = _SupervisedWorker(
                argv,
                log_path=worker_log,
                is_ready=lambda pid: _worker_serving(settings.database_url, pid),
                on_ready=ready,
            )
        if not shutdown.signals:
            shutdown.server.run()  # returns after a signal; SystemExit when it cannot start
    finally:
        if shutdown.worker is not None:
            shutdown.worker.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)


if __name__ == "__main__":
    main()
