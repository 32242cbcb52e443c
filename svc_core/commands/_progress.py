"""A terminal progress line per stage for the engine commands (stderr, throttled)."""

from __future__ import annotations

import sys
import time

import click


class StageProgress:
    """``progress(stage, fraction)`` hook drawing ``stage  [#####.....]  45%  ETA 1:02``."""

    def __init__(self, min_interval_s: float = 0.2) -> None:
        self.min_interval_s = min_interval_s
        self.stage: str | None = None
        self.started = 0.0
        self.last = 0.0
        self.tty = sys.stderr.isatty()

    def __call__(self, stage: str, fraction: float) -> None:
        now = time.monotonic()
        if stage != self.stage:
            if self.stage is not None:
                self._draw(self.stage, 1.0, now, final=True)
            self.stage, self.started, self.last = stage, now, 0.0
        f = min(max(fraction, 0.0), 1.0)
        if f < 1.0 and now - self.last < self.min_interval_s:
            return
        self.last = now
        self._draw(stage, f, now, final=f >= 1.0)

    def _draw(self, stage: str, f: float, now: float, final: bool) -> None:
        elapsed = now - self.started
        eta = elapsed * (1 - f) / f if f > 0.01 and not final else None
        bar = "#" * int(f * 30) + "." * (30 - int(f * 30))
        tail = f"ETA {int(eta) // 60}:{int(eta) % 60:02d}" if eta is not None else ""
        line = f"{stage:<11}[{bar}] {100 * f:5.1f}%  {tail}"
        if self.tty:
            click.echo("\r" + line.ljust(70), err=True, nl=final)
        elif final or f == 0.0:
            click.echo(line, err=True)

    def close(self) -> None:
        if self.stage is not None and self.tty:
            click.echo("", err=True)
