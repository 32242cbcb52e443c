"""Shared fixtures: real databases (SQLite file and a fresh PostgreSQL database per test
module) and a real Redis. With ``SVC_TEST_REQUIRE_SERVICES=1`` (CI) a missing service is an
error; otherwise tests that need it are skipped with the reason."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

REQUIRE_SERVICES = os.environ.get("SVC_TEST_REQUIRE_SERVICES") == "1"
PG_ADMIN_URL = os.environ.get(
    "SVC_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
REDIS_URL = os.environ.get("SVC_TEST_REDIS_URL", "redis://127.0.0.1:6379/14")


def _unavailable(what: str, exc: Exception) -> None:
    msg = f"{what} is not reachable: {exc}"
    if REQUIRE_SERVICES:
        pytest.fail(msg)
    pytest.skip(msg)


@contextmanager
def fresh_pg_database() -> Iterator[str]:
    """Create an empty PostgreSQL database; yield its SQLAlchemy URL; drop it afterwards."""
    import psycopg

    admin = PG_ADMIN_URL.replace("postgresql+psycopg://", "postgresql://")
    name = f"svc_test_{uuid.uuid4().hex[:12]}"
    try:
        conn = psycopg.connect(admin, autocommit=True, connect_timeout=5)
    except Exception as exc:  # noqa: BLE001
        _unavailable("PostgreSQL", exc)
    with conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    try:
        yield url
    finally:
        from app.core.db.session import get_engine

        get_engine(url).dispose()  # close pooled connections so the drop can proceed
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path) -> Iterator[str]:
    """A migrated, empty database of each kind."""
    from app.cli import upgrade_db

    if request.param == "sqlite":
        url = sqlite_url(tmp_path / "svc.db")
        upgrade_db(url)
        yield url
    else:
        with fresh_pg_database() as url:
            upgrade_db(url)
            yield url


@pytest.fixture
def redis_url() -> str:
    import redis

    try:
        client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=3)
        client.ping()
        client.flushdb()
    except Exception as exc:  # noqa: BLE001
        _unavailable("Redis", exc)
    return REDIS_URL
