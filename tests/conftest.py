"""Shared fixtures: real databases (SQLite file and a fresh PostgreSQL database per test
module) and a real Redis. With ``SVC_TEST_REQUIRE_SERVICES=1`` (CI) a missing service is an
error; otherwise tests that need it are skipped with the reason (tests/common/services.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.common.services import REDIS_URL, fresh_pg_database, sqlite_url, unavailable


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
        unavailable("Redis", exc)
    return REDIS_URL
