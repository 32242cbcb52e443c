"""The real services the tests use (PostgreSQL, Redis) and what a missing one means.

With ``SVC_TEST_REQUIRE_SERVICES=1`` (CI) a missing service is an error; otherwise tests that
need it are skipped with the reason."""

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


def unavailable(what: str, exc: Exception) -> None:
    """Fail (services required) or skip the current test: ``what`` is not reachable."""
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
        unavailable("PostgreSQL", exc)
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
