"""Write voice packages (see :mod:`svc_core.model.package`): from a training checkpoint, or
from a singer's existing so-vits-svc 5.0 model and its ``.spk.npy``."""

from __future__ import annotations

import io
import json
import os
import time
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from svc_core.archive import short
from svc_core.errors import BadInputError, IncompatibleError
from svc_core.model.config import SVCConfig, config_from_dict, config_hash, model_hash
from svc_core.model.package import (
    CONFIG_NAME,
    INDEX_NAME,
    INFO_NAME,
    PACKAGE_FORMAT,
    PACKAGE_VERSION,
    SPEAKER_NAME,
    WEIGHTS_NAME,
    VoicePackage,
    load_voice_package,
)
from svc_core.progress import StopFn, check_stop
from svc_core.train import checkpoint as ck
from svc_core.utils import atomic_path

__all__ = [
    "VoicePackage",
    "add_package_index",
    "export_voice_package",
    "import_sovits5_voice",
    "load_voice_package",
    "write_voice_package",
]

# 5.0's content encoders by feature width (its PPG is whisper large; vec is HuBERT-soft)
_PPG_BY_DIM = {1280: "whisper-large-v2", 1024: "whisper-medium", 768: "whisper-small"}
_VEC_BY_DIM = {256: "hubert-soft"}
SOVITS5_F0_METHOD = "crepe-full"  # 5.0's pitch extractor (pitch/inference.py: crepe)


_MAX_SPEAKER_FILE = 64 << 10  # a .spk.npy is 1,152 bytes (256 float32 and its header)


def _speaker_vector(speaker_npy: str | os.PathLike | np.ndarray, spk_dim: int) -> np.ndarray:
    if isinstance(speaker_npy, np.ndarray):
        spk = speaker_npy
    else:
        from svc_core.speaker import load_spk

        p = Path(speaker_npy)
        if p.is_file() and p.stat().st_size > _MAX_SPEAKER_FILE:
            raise BadInputError(
                f"{p.name} is {p.stat().st_size} bytes: a speaker vector (.spk.npy) is about "
                "1 KB; this is not one"
            )
        spk = load_spk(p)  # plain errors for missing/bad files
    spk = np.asarray(spk, dtype=np.float32).reshape(-1)
    if spk.shape[0] != spk_dim or not np.all(np.isfinite(spk)):
        raise BadInputError(
            f"the speaker embedding has {spk.shape[0]} dims (expected {spk_dim}) "
            "or non-finite values"
        )
    return spk


def sovits5_features(config: SVCConfig, f0_method: str = SOVITS5_F0_METHOD) -> dict[str, Any]:
    """The feature settings a 5.0 model converts with: its content encoders (by width), the
    F0 method and 5.0's speaker vectors."""
    m = config.model
    features = {
        "config": "base",  # 5.0's rate and hop (32 kHz, 320): what features are computed at
        "f0_method": f0_method,
        "ppg_model": _PPG_BY_DIM.get(m.ppg_dim),
        "vec_model": _VEC_BY_DIM.get(m.vec_dim),
        "speaker_encoder": "sovits5",
    }
    if features["ppg_model"] is None or features["vec_model"] is None:
        raise BadInputError(
            f"the model uses {m.ppg_dim}-d PPG and {m.vec_dim}-d vec features; svc-studio "
            "knows 5.0's whisper (1280/1024/768-d) and HuBERT-soft (256-d) encoders only"
        )
    return features


def write_voice_package(
    dest_zip: str | os.PathLike,
    config: SVCConfig,
    generator_state: dict[str, Any],
    speaker: np.ndarray,
    info: dict[str, Any],
    index: str | os.PathLike | None = None,
) -> Path:
    """Write a package atomically (temp file, fsync, rename): ``dest_zip`` is never half-written.

    ``index``: a retrieval index file (``.svcindex``) to include.

    ``info`` holds the provenance fields of ``voice.json`` (step, epoch, starts_from, meta...);
    format, version, hashes and sizes are added here.
    """
    import torch
    import yaml

    full = {
        "format": PACKAGE_FORMAT,
        "version": PACKAGE_VERSION,
        "config_hash": config_hash(config),
        "model_hash": model_hash(config),
        "sample_rate": config.audio.sample_rate,
        "hop_length": config.audio.hop_length,
        "ppg_dim": config.model.ppg_dim,
        "vec_dim": config.model.vec_dim,
        "spk_dim": config.model.spk_dim,
        "created": time.time(),
        **info,
    }
    weights = io.BytesIO()
    torch.save(generator_state, weights)
    spk_buf = io.BytesIO()
    np.save(spk_buf, np.asarray(speaker, np.float32))

    dest = Path(dest_zip)
    with atomic_path(dest, fsync=True) as tmp, zipfile.ZipFile(tmp, "w") as z:
        z.writestr(INFO_NAME, json.dumps(full, indent=1), zipfile.ZIP_DEFLATED)
        z.writestr(
            CONFIG_NAME, yaml.safe_dump(config.to_dict(), sort_keys=False), zipfile.ZIP_DEFLATED
        )
        z.writestr(WEIGHTS_NAME, weights.getvalue(), zipfile.ZIP_STORED)
        z.writestr(SPEAKER_NAME, spk_buf.getvalue(), zipfile.ZIP_DEFLATED)
        if index is not None:
            z.write(index, INDEX_NAME, zipfile.ZIP_STORED)
    return dest


def add_package_index(
    package: str | os.PathLike, index: str | os.PathLike, dest_zip: str | os.PathLike
) -> Path:
    """A copy of ``package`` (written atomically to ``dest_zip``) whose retrieval index is
    ``index``: every other member is copied as it is (an index it had is replaced), so the
    model, speaker vector and provenance stay byte for byte those of the original.

    Both files are opened with the real loaders first (size caps, format versions), and
    the index must hold the model's feature widths: a damaged, foreign or mismatched file
    is refused with a plain message rather than copied."""
    from svc_core.retrieval import load_voice_index

    src = Path(package)
    pkg = load_voice_package(src)
    load_voice_index(index).check_fits(pkg.config.model.ppg_dim, pkg.config.model.vec_dim)
    dest = Path(dest_zip)
    with (
        zipfile.ZipFile(src) as zin,
        atomic_path(dest, fsync=True) as tmp,
        zipfile.ZipFile(tmp, "w") as z,
    ):
        for info in zin.infolist():
            if info.filename == INDEX_NAME:
                continue
            with zin.open(info) as fin, z.open(info, "w") as fout:
                while chunk := fin.read(1 << 20):
                    fout.write(chunk)
        z.write(index, INDEX_NAME, zipfile.ZIP_STORED)
    return dest


def export_voice_package(
    checkpoint: str | os.PathLike,
    dest_zip: str | os.PathLike,
    speaker_npy: str | os.PathLike | np.ndarray,
    meta: dict[str, Any] | None = None,
    index: str | os.PathLike | None = None,
) -> Path:
    """Write a voice package from a training checkpoint (e.g. ``out_dir/checkpoints/best.pt``).

    Only the generator's weights are kept (optimisers and discriminator are for training).

    Args:
        checkpoint: a training checkpoint file.
        dest_zip: the package to write.
        speaker_npy: the target singer's speaker vector, ``[spk_dim]`` (a ``.npy`` or array).
        meta: free-form JSON-serialisable provenance (voice name, dataset, F0 method, ...).
        index: the voice's retrieval index (``.svcindex``) to include.

    Returns:
        ``dest_zip``.
    """
    ckpt = ck.load_checkpoint_file(Path(checkpoint))
    config = config_from_dict(ckpt["config"])
    spk = _speaker_vector(speaker_npy, config.model.spk_dim)
    state = ckpt["state"]
    origin = state.get("origin") or {}
    starts = f"base model {origin.get('name')}" if origin.get("kind") == "base_model" else "scratch"
    info = {
        "step": state["step"],
        "epoch": state["epoch"],
        "val_mel": state.get("best_val"),
        "starts_from": starts,
        "meta": dict(meta or {}),
    }
    return write_voice_package(dest_zip, config, ckpt["generator"], spk, info, index)


def import_sovits5_voice(
    model: str | os.PathLike,
    speaker_npy: str | os.PathLike,
    dest_zip: str | os.PathLike,
    *,
    hparams: str | os.PathLike | None = None,
    f0_method: str = SOVITS5_F0_METHOD,
    meta: dict[str, Any] | None = None,
    should_stop: StopFn | None = None,
) -> Path:
    """A singer's so-vits-svc 5.0 voice (its model file + ``.spk.npy``) as a voice package.

    The model file's zip directory is checked before ``torch.load`` reads it
    (:func:`svc_core.model.sovits5.read_torch_file`), the hparams are capped at 1 MiB, and
    the generator is first built on torch's meta device, so a hostile file costs neither
    memory nor time beyond its own size. ``should_stop`` is checked between the steps.

    Args:
        model: 5.0's export ``{model_g}``, training checkpoint or pretrain.
        speaker_npy: the singer's ``.spk.npy`` (5.0's ``speaker0.spk.npy``), float ``[256]``.
        dest_zip: the package to write.
        hparams: the model's 5.0 hparams YAML for files without ``hp_str`` (default sizes:
            5.0's ``configs/base.yaml``).
        f0_method: the F0 method conversions use by default (5.0 extracts with crepe).
        meta: extra provenance for ``voice.json``.
        should_stop: raise :class:`~svc_core.errors.Cancelled` between steps when it says so.

    Raises:
        BadInputError / IncompatibleError: unreadable or mismatching files, in plain words.
    """
    from svc_core.model.inference import VoiceModel
    from svc_core.model.sovits5 import (
        TRAIN_ONLY_PREFIXES,
        check_generator_fits,
        is_sovits5_dict,
        parse_sovits5,
        read_torch_file,
    )

    model = Path(model)
    if not model.is_file():
        raise BadInputError(f"model file {model} does not exist")
    check_stop(should_stop)
    obj = read_torch_file(model)
    check_stop(should_stop)
    if not is_sovits5_dict(obj):
        raise BadInputError(
            f"{model.name} is not a so-vits-svc 5.0 model file (no 'model_g'); an svc-studio "
            "voice package (.zip) is imported as it is"
        )
    f = parse_sovits5(obj, model, hparams)
    if (f.config.audio.sample_rate, f.config.audio.hop_length) != (32000, 320):
        raise BadInputError(
            f"{model.name} runs at {f.config.audio.sample_rate} Hz with hop "
            f"{f.config.audio.hop_length}; 5.0's models (and svc-studio's features) use "
            "32 kHz / 320"
        )
    spk = _speaker_vector(speaker_npy, f.config.model.spk_dim)
    generator = {k: v for k, v in f.generator.items() if not k.startswith(TRAIN_ONLY_PREFIXES)}
    del obj  # the training state (discriminator, optimisers) is not kept: free it now
    f.discriminator = f.optim_g = f.optim_d = None
    what = f"the generator in {model.name}"
    check_generator_fits(f.config, generator, what, f.config_source)  # names what differs
    check_stop(should_stop)
    info = {"file": model.name, "config_source": f.config_source}
    try:
        VoiceModel(f.config, generator, spk, info)  # and it runs: built for real
    except (BadInputError, IncompatibleError):
        raise
    except Exception as exc:  # noqa: BLE001 - a weight torch cannot use, in plain words
        raise IncompatibleError(f"{what} cannot be used: {short(exc)}") from exc
    check_stop(should_stop)
    try:
        features = sovits5_features(f.config, f0_method)
    except BadInputError as exc:
        raise BadInputError(f"{model.name}: {exc}") from exc
    starts = f"imported so-vits-svc 5.0 {f.layout} {model.name}"
    info = {
        "step": f.step,
        "epoch": f.epoch,
        "val_mel": None,
        "starts_from": starts,
        "meta": {
            **(meta or {}),
            "features": features,
            "sovits5": {"layout": f.layout, "config_source": f.config_source},
            "train": {"starts_from": starts, "step": f.step, "epoch": f.epoch},
        },
    }
    return write_voice_package(dest_zip, f.config, generator, spk, info)
