from __future__ import annotations

import sys
from contextlib import ExitStack
from pathlib import Path

import pytest

from tests.common.services import REDIS_URL, fresh_pg_database, sqlite_url, unavailable
from tests.common.stack import Stack, stack_env
from tests.common.tiers import mark_tier
from tests.common.tiny_assets import install_tiny_assets

BACKENDS = ["sqlite-fs", "pg-redis"]


@pytest.fixture(scope="module", params=BACKENDS)
def stack(request, tmp_path_factory):
    """API + one worker + users alice and bob, per backend, shared by a test module."""
    with ExitStack() as es:
        data = tmp_path_factory.mktemp(f"stack-{request.param}")
        logs = data / "logs"
        logs.mkdir()
        # tiny official-format models under the registry's names (whisper-tiny, hubert-soft,
        # the default separation model); whisper-large-v2 stays missing on purpose
        s_assets = install_tiny_assets(data / "models")
        if request.param == "sqlite-fs":
            db, broker = sqlite_url(data / "svc.db"), "filesystem://"
        else:
            import redis

            try:
                redis.Redis.from_url(REDIS_URL, socket_connect_timeout=3).flushdb()
            except Exception as exc:  # noqa: BLE001
                unavailable("Redis", exc)
            db, broker = es.enter_context(fresh_pg_database()), REDIS_URL
        s = Stack(env=stack_env(data, db, broker), data_dir=data, log_dir=logs)
        es.callback(s.stop)
        s.create_user("alice")
        s.create_user("bob")
        s.start_api()
        s.start_worker()
        s.wait_for_worker()
        s.backend = request.param  # type: ignore[attr-defined]
        s.assets = s_assets  # type: ignore[attr-defined]
        yield s
        if request.node.session.testsfailed:
            for f in sorted(logs.iterdir()):
                sys.stderr.write(f"\n--- {f.name} (tail) ---\n{f.read_text()[-4000:]}\n")


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test of this tier carries the ``integration`` marker (tests/common/tiers.py)."""
    mark_tier(items, Path(__file__).parent, "integration")
