"""A cancel is not an error: ``except SvcError`` (every command's, the worker's failure
handling) must let it through to whoever asked for the stop."""

from __future__ import annotations

import pytest

from svc_core.errors import BadInputError, Cancelled, SvcError
from svc_core.progress import check_stop


def test_a_cancel_passes_through_except_svcerror():
    assert not issubclass(Cancelled, SvcError)
    with pytest.raises(Cancelled):
        try:
            check_stop(lambda: True)
        except SvcError:  # what the commands catch to print a plain message
            pytest.fail("a cancel was swallowed as an error")


def test_real_errors_are_still_svcerrors():
    assert issubclass(BadInputError, SvcError)
    check_stop(lambda: False)
    check_stop(None)
