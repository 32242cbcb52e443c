"""The GPU tier: tests that need a CUDA GPU. Every test here is marked ``gpu`` and is skipped,
with the reason, where ``torch.cuda.is_available()`` is False (CI has no GPU)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.common.tiers import mark_tier


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    mine = mark_tier(items, Path(__file__).parent, "gpu")
    if mine:
        import torch

        if not torch.cuda.is_available():
            skip = pytest.mark.skip(reason="needs a CUDA GPU: torch.cuda.is_available() is False")
            for item in mine:
                item.add_marker(skip)
