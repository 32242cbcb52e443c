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
``torch.load(weights_only=True)``: a package from an untrusted upload cannot run code. Every
member's size is checked from the zip's directory before it is read, and ``generator.pt``'s
own zip directory before ``torch.load`` (:mod:`svc_core.archive`: the caps and why);
:func:`checked_report_meta` bounds what an import copies into the voice's stored report.
"""

from __future__ import annotations

import io
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from svc_core.archive import (
    TORCH_FILE_LIMITS,
    VOICE_PACKAGE_LIMITS,
    SafeZip,
    check_zip,
    load_yaml,
    open_zip,
    short,
)
from svc_core.errors import BadInputError, IncompatibleError
from svc_core.model.config import SVCConfig, config_from_dict
from svc_core.progress import StopFn, check_stop

PACKAGE_FORMAT = "svc-studio/voice"
PACKAGE_VERSION = 2  # 2: so-vits-svc 5.0's architecture (1 had a look-alike)
INFO_NAME = "voice.json"
CONFIG_NAME = "config.yaml"
WEIGHTS_NAME = "generator.pt"
SPEAKER_NAME = "speaker.spk.npy"
INDEX_NAME = "retrieval.svcindex"
_MAX_SPEAKER_VALUES = 4096  # a speaker vector is 256 floats


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


def _open(path: Path, name: str | None = None) -> SafeZip:
    name = name or path.name
    return open_zip(
        path,
        VOICE_PACKAGE_LIMITS,
        f"voice package {name}",
        not_zip=f"{name} is not a voice package (not a zip file)",
    )


def _small_npy(data: bytes | bytearray, max_items: int) -> np.ndarray:
    """An ``.npy`` array of at most ``max_items`` values (the header is read first, so a
    header that declares a huge shape allocates nothing)."""
    f = io.BytesIO(data)
    fmt = np.lib.format
    version = fmt.read_magic(f)
    read_header = fmt.read_array_header_1_0 if version == (1, 0) else fmt.read_array_header_2_0
    shape, _, dtype = read_header(f)
    if dtype.hasobject or int(np.prod(shape, dtype=np.float64)) > max_items:
        raise ValueError(f"an array of shape {shape} and dtype {dtype}")
    f.seek(0)
    return np.load(f, allow_pickle=False)


def load_voice_package(
    path: str | Path, should_stop: StopFn | None = None, *, name: str | None = None
) -> VoicePackage:
    """Read a voice package.

    Every member's size is checked from the zip's directory before anything is read
    (:data:`svc_core.archive.VOICE_PACKAGE_LIMITS`); ``should_stop`` is checked between the
    chunks of the reads (raising :class:`~svc_core.errors.Cancelled`). ``name``: what
    messages call the file (default: its file name).

    Raises:
        BadInputError: the file does not exist.
        IncompatibleError: not a voice package, unknown format version, too large, or
            damaged; always in plain words.
    """
    import torch

    path = Path(path)
    if not path.is_file():
        raise BadInputError(f"voice package {path} does not exist")
    shown = name or path.name
    what = f"voice package {shown}"
    with _open(path, shown) as z:
        try:
            info = json.loads(z.read(INFO_NAME, should_stop).decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
            raise IncompatibleError(f"{what}: unreadable {INFO_NAME}") from exc
        if not isinstance(info, dict) or info.get("format") != PACKAGE_FORMAT:
            raise IncompatibleError(f"{shown} is not an svc-studio voice package")
        if info.get("version") == 1:
            raise IncompatibleError(
                f"voice package {shown} was made by an earlier svc-studio whose model was "
                "not so-vits-svc 5.0's; it cannot be loaded: train the voice again"
            )
        if info.get("version") != PACKAGE_VERSION:
            raise IncompatibleError(
                f"voice package {shown} has format version {info.get('version')}; this "
                f"version of svc-studio reads version {PACKAGE_VERSION}"
            )
        if not isinstance(info.get("meta") or {}, dict):
            raise IncompatibleError(f"{what}: the 'meta' of {INFO_NAME} is not a mapping")
        cfg = load_yaml(z.read(CONFIG_NAME, should_stop), f"{what}: {CONFIG_NAME}")
        try:
            if not isinstance(cfg, dict):
                raise BadInputError("not a mapping")
            config = config_from_dict(cfg, name=str(cfg.get("name", "voice"))[:200])
        except Exception as exc:  # noqa: BLE001 - any error of a hostile config is "bad config"
            raise IncompatibleError(f"{what}: bad {CONFIG_NAME}: {short(exc)}") from exc
        weights = z.read(WEIGHTS_NAME, should_stop)
        spk_bytes = z.read(SPEAKER_NAME, should_stop)
    check_stop(should_stop)
    buf = io.BytesIO(weights)
    del weights
    check_zip(
        buf,
        TORCH_FILE_LIMITS,
        f"{what}: {WEIGHTS_NAME}",
        not_zip=f"voice package {shown} is damaged: {WEIGHTS_NAME} is not a torch zip file",
    )
    try:
        state = torch.load(buf, map_location="cpu", weights_only=True)
        speaker = _small_npy(spk_bytes, _MAX_SPEAKER_VALUES)
    except Exception as exc:  # noqa: BLE001 - any decode error means a damaged package
        raise IncompatibleError(f"voice package {shown} is damaged: {short(exc)}") from exc
    del buf
    if not isinstance(state, dict) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()
    ):
        raise IncompatibleError(f"voice package {shown}: {WEIGHTS_NAME} is not a state dict")
    try:
        speaker = np.asarray(speaker, dtype=np.float32).reshape(-1)
    except (TypeError, ValueError) as exc:
        raise IncompatibleError(f"{what}: the speaker embedding is not numeric") from exc
    if speaker.shape[0] != config.model.spk_dim or not np.all(np.isfinite(speaker)):
        raise IncompatibleError(
            f"voice package {shown}: the speaker embedding has {speaker.shape[0]} dims "
            f"(expected {config.model.spk_dim}) or non-finite values"
        )
    return VoicePackage(config=config, generator_state=state, speaker=speaker, info=info)


def check_package_model(pkg: VoicePackage, name: str) -> None:
    """The package's weights fit its config and load: first on torch's meta device (a config
    asking for an absurd model costs nothing), then built for real (what the weights take).

    Raises:
        IncompatibleError: names what differs, in plain words.
    """
    from svc_core.model.inference import VoiceModel
    from svc_core.model.sovits5 import check_generator_fits

    what = f"the generator in voice package {name}"
    source = f"its {CONFIG_NAME}"
    check_generator_fits(pkg.config, pkg.generator_state, what, source)
    try:
        info = {"file": f"voice package {name}", "config_source": source}
        VoiceModel(pkg.config, pkg.generator_state, pkg.speaker, info)
    except (BadInputError, IncompatibleError):
        raise
    except Exception as exc:  # noqa: BLE001 - a weight torch cannot use, in plain words
        raise IncompatibleError(f"{what} cannot be used: {short(exc)}") from exc


def copy_package_index(
    path: str | Path,
    dest: str | Path,
    should_stop: StopFn | None = None,
    *,
    name: str | None = None,
) -> Path | None:
    """Stream the package's retrieval index (``retrieval.svcindex``) into ``dest``; None when
    it has none. Its size was checked from the directory, the copy stops at it."""
    path = Path(path)
    with _open(path, name) as z:
        if INDEX_NAME not in z:
            return None
        return z.copy_to(INDEX_NAME, dest, should_stop)


def package_index(path: str | Path) -> bytes | None:
    """The package's retrieval index file (``retrieval.svcindex``), or None if it has none."""
    path = Path(path)
    with _open(path) as z:
        if INDEX_NAME not in z:
            return None
        return bytes(z.read(INDEX_NAME))


# What an imported package's meta may put into the voice's stored settings and report (the
# API returns them with every voice). A pitch histogram has one bin per MIDI note the
# training data sang (svc_core.report.coverage.pitch_histogram): a real voice has 20-60,
# and MIDI itself has 128 notes, so 256 is twice what can exist. A bigger or malformed one
# is refused rather than cut: a cut histogram would misstate the voice's range, which
# automatic transpose relies on, and no svc-studio package holds one.
MAX_HISTOGRAM_BINS = 256
MAX_REPORT_FIELD_BYTES = 16 << 10  # features / train as JSON (real ones: ~0.5-2 KB)
_MAX_NAME_CHARS = 64


def _finite(x: Any, lo: float, hi: float) -> bool:
    return (
        isinstance(x, (int, float))
        and not isinstance(x, bool)
        and math.isfinite(x)
        and lo <= x <= hi
    )


def _bounded_json(value: Any, field: str, what: str) -> Any:
    try:
        size = len(json.dumps(value, allow_nan=False))
    except (TypeError, ValueError) as exc:
        raise IncompatibleError(
            f"{what}: its {field} holds values that are not plain JSON"
        ) from exc
    if size > MAX_REPORT_FIELD_BYTES:
        raise IncompatibleError(
            f"{what}: its {field} is {size} bytes of JSON; at most {MAX_REPORT_FIELD_BYTES} "
            "are accepted"
        )
    return value


def _histogram(value: Any, what: str) -> list[dict[str, Any]]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise IncompatibleError(f"{what}: its pitch histogram is not a list")
    if len(value) > MAX_HISTOGRAM_BINS:
        raise IncompatibleError(
            f"{what}: its pitch histogram has {len(value)} bins; a real one has one per sung "
            f"MIDI note (at most {MAX_HISTOGRAM_BINS} are accepted)"
        )
    out = []
    for b in value:
        ok = (
            isinstance(b, dict)
            and isinstance(b.get("midi"), int)
            and _finite(b["midi"], -128, 255)
            and isinstance(b.get("note"), str)
            and len(b["note"]) <= 8
            and _finite(b.get("seconds"), 0.0, 1e9)
            and _finite(b.get("share"), 0.0, 1.0)
        )
        if not ok:
            raise IncompatibleError(
                f"{what}: its pitch histogram has a malformed bin (each is midi, note, "
                "seconds, share)"
            )
        out.append({k: b[k] for k in ("midi", "note", "seconds", "share")})
    return out


def checked_report_meta(meta: dict[str, Any], name: str) -> dict[str, Any]:
    """The parts of a package's ``meta`` that a voice's settings and report copy, checked
    for type and size: ``features`` (a mapping), ``pitch_histogram`` (at most
    :data:`MAX_HISTOGRAM_BINS` bins, each rebuilt with its four fields only),
    ``pitch_hop_s`` (default 0.01 s) and ``train`` (a mapping or None).

    Raises:
        IncompatibleError: any of them malformed or too large, in plain words.
    """
    what = f"voice package {name}"
    features = meta.get("features") or {}
    if not isinstance(features, dict):
        raise IncompatibleError(f"{what}: its features are not a mapping")
    for key in ("config", "f0_method", "ppg_model", "vec_model", "speaker_encoder"):
        v = features.get(key)
        if v is not None and not (isinstance(v, str) and len(v) <= _MAX_NAME_CHARS):
            raise IncompatibleError(f"{what}: its features' {key} is not a name")
    train = meta.get("train")
    if train is not None and not isinstance(train, dict):
        raise IncompatibleError(f"{what}: its training summary is not a mapping")
    hop = meta.get("pitch_hop_s")
    if hop is not None and not _finite(hop, 1e-4, 1.0):
        raise IncompatibleError(f"{what}: its pitch_hop_s is not a frame step in seconds")
    return {
        "features": _bounded_json(dict(features), "features", what),
        "pitch_histogram": _histogram(meta.get("pitch_histogram"), what),
        "pitch_hop_s": float(hop) if hop else 0.01,
        "train": _bounded_json(train, "training summary", what),
    }
