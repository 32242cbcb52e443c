"""Fixtures of the service tier: a worker Runtime on a real database of each kind."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.core.config import Settings
from app.core.storage import LocalStorage
from tests.common.tiers import mark_tier
from worker.jobs import runtime as rtm


@pytest.fixture
def rt(db_url, tmp_path):
    """A Runtime whose stage sends are recorded in ``rt.sent`` instead of a broker."""
    sent: list[tuple[str, str]] = []
    settings = Settings(
        database_url=db_url,
        data_dir=tmp_path / "data",
        heartbeat_interval_s=0.2,
        heartbeat_timeout_s=1.0,
        progress_min_interval_s=0.0,
    )
    runtime = rtm.Runtime(
        settings=settings,
        storage=LocalStorage(settings.storage_dir),
        send_stage=lambda job_id, stage, countdown=None: sent.append((job_id, stage)),
    )
    runtime.sent = sent  # type: ignore[attr-defined]
    return runtime


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test of this tier carries the ``service`` marker (tests/common/tiers.py)."""
    mark_tier(items, Path(__file__).parent, "service")
