"""What a training run reports while it runs: typed events passed to ``on_event``.

Each event is a frozen dataclass; :meth:`to_dict` gives its JSON form (``{"event": kind,
...fields}``) for logs and job records.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, ClassVar


@dataclass(frozen=True)
class _Event:
    kind: ClassVar[str] = ""

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for k, v in d.items():
            if isinstance(v, tuple):
                d[k] = list(v)
        return {"event": self.kind, **d}


@dataclass(frozen=True)
class TrainStarted(_Event):
    """The run is set up: what it starts from, where, on how many slices."""

    kind: ClassVar[str] = "start"
    step: int
    epoch: int
    starts_from: str
    resumed_from_step: int | None
    device: str
    train_slices: int
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class StepLogged(_Event):
    """Every ``log_interval`` steps: losses averaged over the window, rate and ETA."""

    kind: ClassVar[str] = "step"
    step: int
    epoch: int
    losses: dict[str, float]
    lr: float
    seconds: float  # training time of the whole run
    steps_per_s: float
    time: float
    eta_s: float | None
    fraction: float  # of the stop rules' budget


@dataclass(frozen=True)
class Evaluated(_Event):
    """A validation pass: mel L1 of the conversion path, and the preview files written."""

    kind: ClassVar[str] = "eval"
    step: int
    epoch: int
    val_mel: float
    best: bool
    seconds: float
    time: float
    previews: tuple[str, ...] = ()


@dataclass(frozen=True)
class CheckpointSaved(_Event):
    kind: ClassVar[str] = "checkpoint"
    step: int
    path: str


@dataclass(frozen=True)
class TrainCancelled(_Event):
    """``should_stop()`` said stop: the state is saved at ``path``."""

    kind: ClassVar[str] = "cancelled"
    step: int
    path: str


@dataclass(frozen=True)
class TrainEnded(_Event):
    """The run stopped by a rule; ``result`` is :class:`~svc_core.train.trainer.TrainResult`'s
    dict form."""

    kind: ClassVar[str] = "end"
    result: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {"event": self.kind, **self.result}


TrainEvent = TrainStarted | StepLogged | Evaluated | CheckpointSaved | TrainCancelled | TrainEnded
