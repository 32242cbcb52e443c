"""Unit-tier fixtures."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread():
    """One torch thread for the unit tests: the suite shares two cores with worker processes
    and other runs (two threads measured 8-12x slower there); CPU results stay reproducible."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
