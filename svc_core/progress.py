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


class RateEta:
    """Time left, from the measured rate of progress.

    The rate is taken from the first report above 0 on (not from the start of the work), so
    the set-up before it (loading models, decoding) does not inflate the estimate: the old
    ``elapsed * (1 - f) / f`` said "4 min 40 s left" at 5 % of a conversion whose first 30 s
    went into loading. Until the work has moved by ``min_fraction`` over ``min_seconds``
    there is no estimate (None) rather than a wild one.
    """

    def __init__(
        self,
        *,
        min_seconds: float = 2.0,
        min_fraction: float = 0.02,
        clock: Callable[[], float] | None = None,
    ) -> None:
        import time

        self.min_seconds = min_seconds
        self.min_fraction = min_fraction
        self._clock = clock or time.monotonic
        self._origin: tuple[float, float] | None = None

    def update(self, fraction: float) -> float | None:
        """Seconds left at ``fraction`` (0..1) done, or None while it cannot be told."""
        now = self._clock()
        f = min(max(float(fraction), 0.0), 1.0)
        if self._origin is None:
            if f > 0.0:  # reports at 0 come before the set-up: the rate starts after it
                self._origin = (now, f)
            return None
        t0, f0 = self._origin
        if f < f0:  # a new attempt restarted lower: measure from here
            self._origin = (now, f)
            return None
        done, took = f - f0, now - t0
        if f >= 1.0:
            return 0.0
        if done < self.min_fraction or took < self.min_seconds:
            return None
        return took * (1.0 - f) / done
