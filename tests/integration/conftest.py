from __future__ import annotations

import os
import sys
from contextlib import ExitStack

import pytest

from tests.conftest import fresh_pg_database, sqlite_url
from tests.integration.stack import ROOT, Stack
from tests.tiny_assets import install_tiny_assets

BACKENDS = ["sqlite-fs", "pg-redis"]


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
            "PYTHONPATH": str(ROOT),
        }
    )
    env.update(extra)
    return env


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

            from tests.conftest import REDIS_URL, _unavailable

            try:
                redis.Redis.from_url(REDIS_URL, socket_connect_timeout=3).flushdb()
            except Exception as exc:  # noqa: BLE001
                _unavailable("Redis", exc)
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
