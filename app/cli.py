"""``svc-studio``: the service commands (serve, worker, users, db) plus the engine commands
of ``svc_core.cli`` (separate, slice, train, convert, …), all loaded lazily."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

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


def worker_argv(queues: str, loglevel: str = "INFO", name: str | None = None) -> list[str]:
    # solo pool: one task at a time per process (one per GPU), models stay loaded between
    # tasks, and cancellation is cooperative through the job row.
    return [
        sys.executable,
        "-m",
        "celery",
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


@main.command()
@click.option("--host", default=None, help="Defaults to SVC_HOST (127.0.0.1).")
@click.option("--port", default=None, type=int, help="Defaults to SVC_PORT (8000).")
@click.option("--no-worker", is_flag=True, help="Do not start a worker process.")
def serve(host: str | None, port: int | None, no_worker: bool) -> None:
    """Start the API and one worker on this machine (embedded defaults: SQLite, local storage,
    a filesystem broker — nothing else to install). Prints the URL and an access token."""
    import uvicorn

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
    proc = None
    if not no_worker:
        proc = subprocess.Popen(worker_argv("cpu,gpu", "WARNING"))
    url = f"http://{host}:{port}"
    click.echo("")
    click.echo(f"  svc-studio is running at {url}/  (API docs: {url}/docs)")
    click.echo(f"  access token (user 'admin'): {token}")
    click.echo(f"  data: {settings.data_dir}   database: {settings.database_url}")
    click.echo("")
    try:
        uvicorn.run(
            "app.api.main:app_factory", factory=True, host=host, port=port, log_level="warning"
        )
    finally:
        if proc is not None:
            proc.send_signal(signal.SIGTERM)
            deadline = time.monotonic() + 30
            while proc.poll() is None and time.monotonic() < deadline:
                time.sleep(0.2)
            if proc.poll() is None:
                proc.kill()


if __name__ == "__main__":
    main()
