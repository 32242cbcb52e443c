"""Export a training checkpoint as a voice package (see :mod:`svc_core.model.package`)."""

from __future__ import annotations

import io
import json
import os
import time
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from svc_core.errors import BadInputError
from svc_core.model.config import config_from_dict
from svc_core.model.package import (
    CONFIG_NAME,
    INFO_NAME,
    PACKAGE_FORMAT,
    PACKAGE_VERSION,
    SPEAKER_NAME,
    WEIGHTS_NAME,
    VoicePackage,
    load_voice_package,
)
from svc_core.train import checkpoint as ck

__all__ = ["export_voice_package", "load_voice_package", "VoicePackage"]


def export_voice_package(
    checkpoint: str | os.PathLike,
    dest_zip: str | os.PathLike,
    speaker_npy: str | os.PathLike | np.ndarray,
    meta: dict[str, Any] | None = None,
) -> Path:
    """Write a voice package from a training checkpoint (e.g. ``out_dir/checkpoints/best.pt``).

    Only the generator's weights are kept (optimisers and discriminator are for training).
    The zip is written to a temp file and renamed, so ``dest_zip`` is never half-written.

    Args:
        checkpoint: a training checkpoint file.
        dest_zip: the package to write.
        speaker_npy: the target singer's embedding, ``[spk_dim]`` (a ``.npy`` path or array).
        meta: free-form JSON-serialisable provenance (voice name, dataset, F0 method, ...).

    Returns:
        ``dest_zip``.
    """
    import torch
    import yaml

    ckpt = ck.load_checkpoint_file(Path(checkpoint))
    config = config_from_dict(ckpt["config"])
    if isinstance(speaker_npy, np.ndarray):
        spk = speaker_npy
    else:
        p = Path(speaker_npy)
        if not p.is_file():
            raise BadInputError(f"speaker embedding {p} does not exist")
        spk = np.load(p, allow_pickle=False)
    spk = np.asarray(spk, dtype=np.float32).reshape(-1)
    if spk.shape[0] != config.model.spk_dim or not np.all(np.isfinite(spk)):
        raise BadInputError(
            f"the speaker embedding has {spk.shape[0]} dims (expected {config.model.spk_dim}) "
            "or non-finite values"
        )
    state = ckpt["state"]
    origin = state.get("origin") or {}
    starts = f"base model {origin.get('name')}" if origin.get("kind") == "base_model" else "scratch"
    info = {
        "format": PACKAGE_FORMAT,
        "version": PACKAGE_VERSION,
        "config_hash": ckpt["config_hash"],
        "model_hash": ckpt["model_hash"],
        "sample_rate": config.audio.sample_rate,
        "hop_length": config.audio.hop_length,
        "ppg_dim": config.model.ppg_dim,
        "vec_dim": config.model.vec_dim,
        "spk_dim": config.model.spk_dim,
        "step": state["step"],
        "epoch": state["epoch"],
        "val_mel": state.get("best_val"),
        "starts_from": starts,
        "created": time.time(),
        "meta": dict(meta or {}),
    }
    weights = io.BytesIO()
    torch.save(ckpt["generator"], weights)
    spk_buf = io.BytesIO()
    np.save(spk_buf, spk)

    dest = Path(dest_zip)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}.tmp")
    try:
        with zipfile.ZipFile(tmp, "w") as z:
            z.writestr(INFO_NAME, json.dumps(info, indent=1), zipfile.ZIP_DEFLATED)
            z.writestr(
                CONFIG_NAME, yaml.safe_dump(config.to_dict(), sort_keys=False), zipfile.ZIP_DEFLATED
            )
            z.writestr(WEIGHTS_NAME, weights.getvalue(), zipfile.ZIP_STORED)
            z.writestr(SPEAKER_NAME, spk_buf.getvalue(), zipfile.ZIP_DEFLATED)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, dest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    ck.fsync_dir(dest.parent)
    return dest
