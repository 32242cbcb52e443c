"""The test tiers: each tier is a folder under tests/ whose tests all carry the tier's marker
(declared in pyproject.toml), so ``-m`` selects tiers. A tier's conftest.py applies it with
:func:`mark_tier` in its ``pytest_collection_modifyitems`` hook; tests/unit carries none."""

from __future__ import annotations

from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parents[1]
# folder under tests/ -> marker its tests carry (None: the unit tier, no tier marker)
TIERS: dict[str, str | None] = {
    "unit": None,
    "service": "service",
    "integration": "integration",
    "browser": "browser",
    "gpu": "gpu",
}
TIER_MARKERS = frozenset(m for m in TIERS.values() if m)


def mark_tier(items: list[pytest.Item], folder: Path, marker: str) -> list[pytest.Item]:
    """Add ``marker`` to every collected item under ``folder``; return those items.

    The hook sees the whole session's items, whichever conftest defines it, hence the folder.
    """
    folder = folder.resolve()
    mine = [item for item in items if item.path.resolve().is_relative_to(folder)]
    mark = getattr(pytest.mark, marker)
    for item in mine:
        item.add_marker(mark)
    return mine
