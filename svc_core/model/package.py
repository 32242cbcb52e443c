"""Voice packages: a trained voice in one zip file, what conversion loads.

Contents::

    voice.json        {"format": "svc-studio/voice", "version": 1, "config_hash", "model_hash",
                       "sample_rate", "hop_length", "ppg_dim", "vec_dim", "spk_dim",
                       "step", "epoch", "val_mel", "starts_from", "created", "meta": {...}}
    config.yaml       the model config (audio/model/train sections)
    generator.pt      generator weights only (a state dict of tensors)
    speaker.spk.npy   the target singer's speaker vector, float32 [spk_dim]
    retrieval.svcindex  optional: the voice's feature-retrieval index (svc_core.retrieval)

Written by :func:`svc_core.train.package.export_voice_package`. Weights are read with
``torch.load(weights_only=True)``: a package from an untrusted upload cannot run code.
"""

from __future__ import annotations

import io
import json
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from svc_core.errors import BadInputError, IncompatibleError
from svc_core.model.config import SVCConfig, config_from_dict

PACKAGE_FORMAT = "svc-studio/voice"
PACKAGE_VERSION = 2  # 2: so-vits-svc 5.0's architecture (1 had a look-alike)
INFO_NAME = "voice.json"
CONFIG_NAME = "config.yaml"
WEIGHTS_NAME = "generator.pt"
SPEAKER_NAME = "speaker.spk.npy"
INDEX_NAME = "retrieval.svcindex"
_MAX_MEMBER_BYTES = 2 << 30  # refuse absurd members (zip bombs) before reading them


@dataclass(frozen=True)
class VoicePackage:
    """A loaded voice package.

    Attributes:
        config: the model config.
        generator_state: generator state dict (CPU tensors).
        speaker: ``[spk_dim]`` float32 target speaker embedding.
        info: the parsed ``voice.json`` (format, version, provenance, ``meta``).
    """

    config: SVCConfig
    generator_state: dict[str, Any]
    speaker: np.ndarray
    info: dict[str, Any]

    @property
    def meta(self) -> dict[str, Any]:
        return dict(self.info.get("meta") or {})


def _read(z: zipfile.ZipFile, name: str, path: Path) -> bytes:
    try:
        zi = z.getinfo(name)
    except KeyError:
        raise IncompatibleError(f"voice package {path.name} lacks {name}") from None
    if zi.file_size > _MAX_MEMBER_BYTES:
        raise IncompatibleError(f"voice package {path.name}: {name} is too large")
    return z.read(name)


def load_voice_package(path: str | Path) -> VoicePackage:
    """Read a voice package.

    Raises:
        BadInputError: the file does not exist.
        IncompatibleError: not a voice package, unknown format version, or damaged.
    """
    import torch
    import yaml

    path = Path(path)
    if not path.is_file():
        raise BadInputError(f"voice package {path} does not exist")
    try:
        z = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise IncompatibleError(f"{path.name} is not a voice package (not a zip file)") from exc
    with z:
        try:
            info = json.loads(_read(z, INFO_NAME, path).decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise IncompatibleError(f"voice package {path.name}: unreadable {INFO_NAME}") from exc
        if not isinstance(info, dict) or info.get("format") != PACKAGE_FORMAT:
            raise IncompatibleError(f"{path.name} is not an svc-studio voice package")
        if info.get("version") == 1:
            raise IncompatibleError(
                f"voice package {path.name} was made by an earlier svc-studio whose model was "
                "not so-vits-svc 5.0's; it cannot be loaded: train the voice again"
            )
        if info.get("version") != PACKAGE_VERSION:
            raise IncompatibleError(
                f"voice package {path.name} has format version {info.get('version')}; this "
                f"version of svc-studio reads version {PACKAGE_VERSION}"
            )
        try:
            cfg = yaml.safe_load(_read(z, CONFIG_NAME, path).decode("utf-8"))
            config = config_from_dict(cfg, name=str(cfg.get("name", "voice")))
        except (yaml.YAMLError, UnicodeDecodeError, BadInputError, AttributeError) as exc:
            raise IncompatibleError(f"voice package {path.name}: bad {CONFIG_NAME}: {exc}") from exc
        try:
            state = torch.load(
                io.BytesIO(_read(z, WEIGHTS_NAME, path)), map_location="cpu", weights_only=True
            )
            speaker = np.load(io.BytesIO(_read(z, SPEAKER_NAME, path)), allow_pickle=False)
        except IncompatibleError:
            raise
        except Exception as exc:  # noqa: BLE001 - any decode error means a damaged package
            raise IncompatibleError(f"voice package {path.name} is damaged: {exc}") from exc
    if not isinstance(state, dict):
        raise IncompatibleError(f"voice package {path.name}: {WEIGHTS_NAME} is not a state dict")
    speaker = np.asarray(speaker, dtype=np.float32).reshape(-1)
    if speaker.shape[0] != config.model.spk_dim or not np.all(np.isfinite(speaker)):
        raise IncompatibleError(
            f"voice package {path.name}: the speaker embedding has {speaker.shape[0]} dims "
            f"(expected {config.model.spk_dim}) or non-finite values"
        )
    return VoicePackage(config=config, generator_state=state, speaker=speaker, info=info)


def package_index(path: str | Path) -> bytes | None:
    """The package's retrieval index file (``retrieval.svcindex``), or None if it has none."""
    path = Path(path)
    try:
        with zipfile.ZipFile(path) as z:
            if INDEX_NAME not in z.namelist():
                return None
            return _read(z, INDEX_NAME, path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise IncompatibleError(f"{path.name} is not a voice package (not a zip file)") from exc
