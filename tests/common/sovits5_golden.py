"""Rebuild the so-vits-svc 5.0 golden cases' tensors and files (tests/data/sovits5).

Each case stores a recipe instead of weights: every state-dict entry is either a buffer kept
verbatim (``buffers.npz``) or filled with deterministic uniform values from a counter-based
generator (splitmix64 of ``index * golden_ratio + key``, key = first 8 bytes of
``sha256("{seed}:{part}/{name}")``). This module is our own implementation of that rule.
"""

from __future__ import annotations

import hashlib
import json
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

DATA = Path(__file__).resolve().parents[1] / "data" / "sovits5"
CASES = ("tiny", "base")

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)


def uniform01(name: str, n: int, seed: int) -> np.ndarray:
    """``n`` deterministic floats in [0, 1) for the tensor called ``name``."""
    digest = hashlib.sha256(f"{seed}:{name}".encode()).digest()
    key = np.uint64(int.from_bytes(digest[:8], "little"))
    with np.errstate(over="ignore"):
        x = np.arange(n, dtype=np.uint64) * _GOLDEN + key
        x = (x ^ (x >> np.uint64(30))) * _M1
        x = (x ^ (x >> np.uint64(27))) * _M2
        x = x ^ (x >> np.uint64(31))
    return (x >> np.uint64(11)).astype(np.float64) / float(2**53)


def filled(name: str, shape: list[int], mean: float, std: float, seed: int) -> np.ndarray:
    n = int(np.prod(shape)) if shape else 1
    v = mean + std * np.sqrt(3.0) * (2.0 * uniform01(name, n, seed) - 1.0)
    return v.astype(np.float32).reshape(shape)


@cache
def recipe(case: str) -> dict[str, Any]:
    return json.loads((DATA / case / "recipe.json").read_text())


def state_dict(case: str, part: str) -> dict[str, Any]:
    """Part ``model_g``, ``model_d`` or ``speaker`` of a case, as torch tensors (legacy keys)."""
    import torch

    r = recipe(case)
    buffers = np.load(DATA / case / "buffers.npz")
    out = {}
    for t in r[part]["tensors"]:
        if t["fill"] == "buffer":
            a = np.array(buffers[f"{part}/{t['name']}"], copy=True)
        else:
            a = filled(f"{part}/{t['name']}", t["shape"], t["mean"], t["std"], r["seed"])
        out[t["name"]] = torch.from_numpy(a)
    return out


def hparams_path(case: str) -> Path:
    return DATA / case / "hparams.yaml"


def inputs(case: str) -> dict[str, np.ndarray]:
    return dict(np.load(DATA / case / "inputs.npz"))


def golden(case: str) -> dict[str, np.ndarray]:
    return dict(np.load(DATA / case / "golden.npz"))


def write_layouts(case: str, out_dir: Path) -> dict[str, Path]:
    """5.0's three model-file layouts of a case: pretrain, training checkpoint and export."""
    import torch

    r = recipe(case)
    out_dir.mkdir(parents=True, exist_ok=True)
    g, d = state_dict(case, "model_g"), state_dict(case, "model_d")
    paths = {
        "pretrain": out_dir / "sovits5.0.pretrain.pth",
        "checkpoint": out_dir / "sovits5.0_0040.pt",
        "export": out_dir / "sovits5.0.pth",
    }
    torch.save({"model_g": g, "model_d": d}, paths["pretrain"])
    tr = r["train"]

    def adamw(part: str, sd: dict[str, Any], lr: float) -> dict[str, Any]:
        params = [torch.nn.Parameter(sd[n].clone()) for n in r[part]["param_order"]]
        opt = torch.optim.AdamW(params, lr=lr, betas=tuple(tr["betas"]), eps=tr["eps"])
        for p in params:
            opt.state[p] = {
                "step": torch.tensor(float(r["step"])),
                "exp_avg": torch.zeros_like(p),
                "exp_avg_sq": torch.full_like(p, 1e-8),
            }
        return opt.state_dict()

    torch.save(
        {
            "model_g": g,
            "model_d": d,
            "optim_g": adamw("model_g", g, tr["learning_rate"]),
            "optim_d": adamw("model_d", d, tr["learning_rate"] / tr["accum_step"]),
            "step": r["step"],
            "epoch": r["epoch"],
            "hp_str": hparams_path(case).read_text(),
        },
        paths["checkpoint"],
    )
    torch.save({"model_g": {k: g[k] for k in r["infer_keys"]}}, paths["export"])
    return paths


def write_speaker_encoder(out_dir: Path) -> Path:
    """5.0's speaker encoder file ``best_model.pth.tar``: ``{"model": state_dict}``."""
    import torch

    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "best_model.pth.tar"
    torch.save({"model": state_dict("speaker", "speaker")}, path)
    return path
