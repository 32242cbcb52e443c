"""Progress and cancellation hooks passed into long-running engine functions.

The engine never knows about jobs or databases: a caller passes ``progress(stage, fraction)``
and ``should_stop()`` callables (the worker implements them against the Job row; the CLI
draws a progress bar).
"""

from __future__ import annotations

from collections.abc import Callable

from svc_core.errors import Cancelled

ProgressFn = Callable[[str, float], None]
StopFn = Callable[[], bool]


def no_progress(stage: str, fraction: float) -> None:  # noqa: ARG001 - the null hook
    return None


def never_stop() -> bool:
    return False


def check_stop(should_stop: StopFn | None) -> None:
    """Raise :class:`Cancelled` when the caller asked to stop."""
    if should_stop is not None and should_stop():
        raise Cancelled("cancelled")


def sub_progress(progress: ProgressFn | None, stage: str, start: float, end: float) -> ProgressFn:
    """Map a sub-task's 0..1 onto ``start..end`` of ``stage``."""

    def _p(_stage: str, fraction: float) -> None:
        if progress is not None:
            progress(stage, start + (end - start) * min(max(fraction, 0.0), 1.0))

    return _p
