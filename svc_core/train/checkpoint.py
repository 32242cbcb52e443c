"""Training checkpoints: one file holds everything needed to continue a run exactly.

Layout inside a run folder (``out_dir``)::

    checkpoints/step_00001000.pt   the last ``keep_last`` saves
    checkpoints/latest.pt          the newest save (hard link, or a copy where links fail)
    checkpoints/best.pt            the save with the lowest validation mel loss so far

A checkpoint is a ``torch.save`` dict of tensors and plain Python values only (no pickled
objects), so it loads with ``torch.load(weights_only=True)`` — a base model downloaded from
elsewhere cannot run code when loaded. Keys:

- ``format`` (``"svc-studio/train-checkpoint"``), ``version`` (:data:`CHECKPOINT_VERSION`);
- ``config`` (dict form), ``config_hash``, ``model_hash``;
- ``generator``, ``discriminator``, ``optim_g``, ``optim_d``, ``sched_g``, ``sched_d``,
  ``scaler`` (state dicts);
- ``state``: step, epoch, batch (batches of the current epoch already consumed), best
  validation loss, evals since best, training seconds, origin (scratch / base model);
- ``rng``: python, numpy, torch and CUDA generator states.

Writes are atomic: a temp file in the same folder is written, flushed, fsynced and renamed
over the target, and the folder is fsynced. A crash mid-write leaves the previous files
intact and at worst a ``.tmp`` file, which is ignored and swept at the next start.
"""

from __future__ import annotations

import os
import random
import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch

from svc_core.errors import IncompatibleError
from svc_core.utils import atomic_path, atomic_write

CHECKPOINT_FORMAT = "svc-studio/train-checkpoint"
CHECKPOINT_VERSION = 2  # 2: so-vits-svc 5.0's architecture
CHECKPOINT_DIR = "checkpoints"
LATEST_NAME = "latest.pt"
BEST_NAME = "best.pt"
_STEP_RE = re.compile(r"^step_(\d{8,})\.pt$")


def step_name(step: int) -> str:
    return f"step_{step:08d}.pt"


def atomic_torch_save(obj: Any, path: Path) -> Path:
    """``torch.save`` to ``path`` via temp file + fsync + rename."""
    with atomic_write(path, fsync=True) as f:
        torch.save(obj, f)
    return Path(path)


def link_or_copy(src: Path, dst: Path) -> None:
    """Point ``dst`` at ``src``'s content atomically: a hard link (no extra disk) or a copy."""
    with atomic_path(dst, fsync=True) as tmp:
        try:
            os.link(src, tmp)
        except OSError:  # filesystems without hard links (some network/FUSE mounts)
            shutil.copyfile(src, tmp)


def sweep_temp_files(folder: Path) -> None:
    """Remove temp files left by a process killed mid-write."""
    if folder.is_dir():
        for p in folder.glob(".*.tmp"):
            p.unlink(missing_ok=True)


def step_checkpoints(folder: Path) -> list[tuple[int, Path]]:
    """``(step, path)`` of the ``step_*.pt`` files in ``folder``, oldest first."""
    out = []
    if folder.is_dir():
        for p in folder.iterdir():
            m = _STEP_RE.match(p.name)
            if m:
                out.append((int(m.group(1)), p))
    return sorted(out)


def rotate(folder: Path, keep_last: int) -> None:
    """Delete all but the newest ``keep_last`` step files (latest/best are separate links)."""
    files = step_checkpoints(folder)
    for _, p in files[: max(len(files) - keep_last, 0)]:
        p.unlink(missing_ok=True)


# -- RNG -----------------------------------------------------------------------------------


def rng_state() -> dict[str, Any]:
    """Python, numpy, torch and CUDA generator states as tensors and plain values."""
    py = random.getstate()
    np_state = np.random.get_state()
    return {
        "python": [py[0], list(py[1]), py[2]],
        "numpy": {
            "keys": torch.from_numpy(np.asarray(np_state[1], dtype=np.int64)),
            "pos": int(np_state[2]),
            "has_gauss": int(np_state[3]),
            "cached_gaussian": float(np_state[4]),
        },
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def set_rng_state(state: dict[str, Any]) -> None:
    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    n = state["numpy"]
    np.random.set_state(
        (
            "MT19937",
            n["keys"].numpy().astype(np.uint32),
            n["pos"],
            n["has_gauss"],
            n["cached_gaussian"],
        )
    )
    torch.set_rng_state(state["torch"].cpu())
    cuda = state.get("cuda") or []
    if cuda and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all([s.cpu() for s in cuda])


# -- load ----------------------------------------------------------------------------------


def check_checkpoint(ckpt: Any, path: Path) -> dict[str, Any]:
    """Check a loaded object's checkpoint format and version (see :func:`load_checkpoint_file`)."""
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        raise IncompatibleError(f"{path.name} is neither an svc-studio nor a so-vits-svc 5.0 model")
    version = ckpt.get("version")
    if version == 1:
        raise IncompatibleError(
            f"{path.name} was trained by an earlier svc-studio whose model was not so-vits-svc "
            "5.0's; it cannot be used: train the voice again (it now fine-tunes 5.0's pretrain)"
        )
    if version != CHECKPOINT_VERSION:
        raise IncompatibleError(
            f"{path.name} is a version {version} checkpoint; this version of "
            f"svc-studio reads version {CHECKPOINT_VERSION}"
        )
    return ckpt


def load_checkpoint_file(path: Path) -> dict[str, Any]:
    """Load and check a training checkpoint's format and version.

    Raises:
        IncompatibleError: not a checkpoint, unreadable, or of an unknown version.
    """
    path = Path(path)
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise
    except Exception as exc:  # noqa: BLE001 - any unpickling/zip error means "not usable"
        raise IncompatibleError(
            f"{path.name} is not a readable svc-studio checkpoint ({type(exc).__name__}: {exc})"
        ) from exc
    return check_checkpoint(ckpt, path)


def find_resume_checkpoint(out_dir: Path) -> Path | None:
    """The checkpoint a run in ``out_dir`` continues from: ``latest.pt``, else the newest step
    file (``latest.pt`` can be missing only if a process died between the two renames)."""
    folder = Path(out_dir) / CHECKPOINT_DIR
    latest = folder / LATEST_NAME
    if latest.is_file():
        return latest
    files = step_checkpoints(folder)
    return files[-1][1] if files else None
