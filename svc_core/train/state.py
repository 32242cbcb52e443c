"""Everything a training run is at one moment, in one object (descript-audio-codec's ``State``).

:class:`TrainState` holds the modules, optimisers, schedulers, grad scalers and the
:class:`Counters`; its :meth:`~TrainState.state_dict` / :meth:`~TrainState.load_state_dict`
walk those fields generically, so a checkpoint is ``TrainState.state_dict()`` plus format
fields and RNG states, and nothing is copied field by field.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

import torch


@dataclass
class Counters:
    """Progress of a run besides module/optimiser states (a checkpoint's ``state``)."""

    step: int = 0
    epoch: int = 0  # completed epochs
    batch: int = 0  # batches of the current epoch already consumed
    best_val: float | None = None
    last_val: float | None = None
    evals_since_best: int = 0
    train_seconds: float = 0.0
    origin: dict[str, Any] = field(default_factory=lambda: {"kind": "scratch"})
    dataset: str = ""
    accum: int = 0  # generator batches accumulated since its last optimiser step

    def starts_from(self) -> str:
        if self.origin.get("kind") == "base_model":
            o = self.origin
            fmt = o.get("format", "svc-studio")
            what = f"base model {o['name']} (sha256 {o['sha256'][:12]}, {fmt})"
            if o.get("partial"):
                what += "; posterior encoder and speaker classifier from scratch"
            elif not o.get("discriminator"):
                what += "; discriminator from scratch"
            return what
        return "from scratch"

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Counters:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


@dataclass
class TrainState:
    """The modules, optimisers, schedulers and scalers of a run, and its counters.

    Every field but ``counters`` has ``state_dict``/``load_state_dict``; checkpoint keys are
    the field names (``generator``, ``discriminator``, ``optim_g``...). Generator gradients
    accumulated between two optimiser steps are saved as ``pending_grad_g``.
    """

    generator: torch.nn.Module
    discriminator: torch.nn.Module
    optim_g: torch.optim.Optimizer
    optim_d: torch.optim.Optimizer
    sched_g: Any
    sched_d: Any
    scaler_g: torch.amp.GradScaler
    scaler_d: torch.amp.GradScaler
    counters: Counters = field(default_factory=Counters)

    def _stateful(self) -> list[tuple[str, Any]]:
        return [(f.name, getattr(self, f.name)) for f in fields(self) if f.name != "counters"]

    def state_dict(self) -> dict[str, Any]:
        out = {name: obj.state_dict() for name, obj in self._stateful()}
        out["state"] = asdict(self.counters)
        out["pending_grad_g"] = {
            n: p.grad.detach().cpu()
            for n, p in self.generator.named_parameters()
            if self.counters.accum and p.grad is not None
        }
        return out

    def load_state_dict(self, d: dict[str, Any], device: torch.device) -> None:
        for name, obj in self._stateful():
            obj.load_state_dict(d[name])
            if isinstance(obj, torch.nn.Module):
                obj.to(device)
        self.counters = Counters.from_dict(d["state"])
        pending = d.get("pending_grad_g") or {}
        for name, p in self.generator.named_parameters():
            if name in pending:
                p.grad = pending[name].to(device)
