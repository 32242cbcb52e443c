"""Turn SIGTERM (and optionally SIGINT) into a ``should_stop()`` flag for :func:`train`.

A process manager (systemd, Docker, Kubernetes, a Celery warm shutdown) sends SIGTERM and
waits a grace period; training must then write a checkpoint and exit instead of dying
mid-step. Usage::

    with StopOnSignal() as stop:
        train(dataset, out, "base", params, should_stop=stop)
"""

from __future__ import annotations

import signal
import threading
from types import FrameType

from svc_core.progress import StopFn


class StopOnSignal:
    """A ``should_stop`` callable that becomes True once one of ``signals`` arrived.

    Args:
        signals: signals to catch while the context is active.
        chain: another ``should_stop`` to OR with (e.g. the job's cancel flag).

    Handlers can only be installed from the main thread; elsewhere the context installs
    nothing and the object only forwards ``chain`` (the caller must deliver signals itself,
    e.g. by calling :meth:`trigger`).
    """

    def __init__(
        self,
        signals: tuple[signal.Signals, ...] = (signal.SIGTERM,),
        chain: StopFn | None = None,
    ):
        self.signals = signals
        self.chain = chain
        self.received: int | None = None
        self._previous: dict[int, object] = {}

    def trigger(self, signum: int = signal.SIGTERM) -> None:
        self.received = int(signum)

    def _handler(self, signum: int, frame: FrameType | None) -> None:  # noqa: ARG002
        self.trigger(signum)

    def __enter__(self) -> StopOnSignal:
        if threading.current_thread() is threading.main_thread():
            for s in self.signals:
                self._previous[int(s)] = signal.signal(s, self._handler)
        return self

    def __exit__(self, *exc: object) -> None:
        for s, prev in self._previous.items():
            signal.signal(s, prev)  # type: ignore[arg-type]
        self._previous.clear()

    def __call__(self) -> bool:
        return self.received is not None or bool(self.chain and self.chain())
