"""so-vits-svc 5.0's files: its hparams YAML, its three model layouts, legacy weight norm.

5.0 (PlayVoice/whisper-vits-svc) writes ``torch.save``d dicts:

- the pretrain ``sovits5.0.pretrain.pth``: ``{"model_g", "model_d"}``;
- a training checkpoint ``<name>_<epoch>.pt``:
  ``{"model_g", "model_d", "optim_g", "optim_d", "step", "epoch", "hp_str"}``;
- an export ``sovits5.0.pth`` (``svc_export.py``): ``{"model_g"}`` with the inference keys
  only (``enc_p``, ``flow``, ``dec``).

Weight norm is stored in torch's legacy form (``X.weight_g``, ``X.weight_v``); our modules use
``torch.nn.utils.parametrizations.weight_norm`` (``X.parametrizations.weight.original0/1``,
the same two tensors). :func:`from_legacy` and :func:`to_legacy` are the one place that maps
between the two. Sizes come from ``hp_str`` (5.0's YAML), else a YAML the user gives, else
5.0's ``configs/base.yaml`` (= our ``base`` config).
"""

from __future__ import annotations

import ast
import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from svc_core.archive import MAX_YAML_BYTES, TORCH_FILE_LIMITS, check_zip, load_yaml, short
from svc_core.errors import BadInputError, IncompatibleError
from svc_core.model.config import AudioConfig, SVCConfig, load_config

_G, _V = "weight_g", "weight_v"
_P0, _P1 = "parametrizations.weight.original0", "parametrizations.weight.original1"
# keys of 5.0's SynthesizerTrn that its inference model (and export) does not have
TRAIN_ONLY_PREFIXES = ("emb_g.", "enc_q.", "speaker_classifier.")


def from_legacy(state: dict[str, Any]) -> dict[str, Any]:
    """Legacy weight-norm keys (``weight_g``/``weight_v``) -> parametrisation keys."""
    out = {}
    for k, v in state.items():
        if k.endswith("." + _G):
            k = k[: -len(_G)] + _P0
        elif k.endswith("." + _V):
            k = k[: -len(_V)] + _P1
        out[k] = v
    return out


def to_legacy(state: dict[str, Any]) -> dict[str, Any]:
    """Parametrisation keys -> 5.0's legacy weight-norm keys (for files 5.0 can read)."""
    out = {}
    for k, v in state.items():
        if k.endswith(_P0):
            k = k[: -len(_P0)] + _G
        elif k.endswith(_P1):
            k = k[: -len(_P1)] + _V
        out[k] = v
    return out


def _get(d: dict[str, Any], section: str, key: str, default: Any = None) -> Any:
    sec = d.get(section) or {}
    if not isinstance(sec, dict):
        raise BadInputError(f"5.0 hparams: section '{section}' is not a mapping")
    return sec.get(key, default)


def _resolutions(value: Any) -> tuple[tuple[int, int, int], ...]:
    """5.0 writes the MRD resolutions as a Python literal in a string (it ``eval``s it)."""
    if isinstance(value, str):
        try:
            value = ast.literal_eval(value[:4096])  # 5.0's is ~80 characters
        except (ValueError, SyntaxError, RecursionError, MemoryError, TypeError) as exc:
            raise BadInputError(
                f"5.0 hparams: mrd.resolutions is not a list: {short(repr(value), 80)}"
            ) from exc
    try:
        return tuple(tuple(int(x) for x in r) for r in value)
    except (TypeError, ValueError) as exc:
        raise BadInputError(f"5.0 hparams: bad mrd.resolutions {short(repr(value), 80)}") from exc


def config_from_hparams(hp: dict[str, Any], name: str = "sovits5") -> SVCConfig:
    """A 5.0 hparams mapping (its YAML) -> our config; 5.0's fixed sizes are our defaults."""
    if not isinstance(hp, dict) or not all(k in hp for k in ("data", "vits", "gen")):
        raise BadInputError("not a so-vits-svc 5.0 hparams file (needs data, vits, gen sections)")
    base = load_config("base")
    try:
        audio = AudioConfig(
            sample_rate=int(_get(hp, "data", "sampling_rate", 32000)),
            hop_length=int(_get(hp, "data", "hop_length", 320)),
            n_fft=int(_get(hp, "data", "filter_length", 1024)),
            win_length=int(_get(hp, "data", "win_length", 1024)),
            n_mels=int(_get(hp, "data", "mel_channels", 100)),
            f_min=float(_get(hp, "data", "mel_fmin", 50.0)),
            f_max=float(_get(hp, "data", "mel_fmax", 16000.0)),
            segment_size=int(_get(hp, "data", "segment_size", 8000)),
        )
        v = {k: int(_get(hp, "vits", k)) for k in (
            "ppg_dim", "vec_dim", "spk_dim", "gin_channels", "inter_channels",
            "hidden_channels", "filter_channels",
        )}  # fmt: skip
        g = hp["gen"]
        model = dataclasses.replace(
            base.model,
            **v,
            upsample_input=int(g["upsample_input"]),
            upsample_initial_channel=int(g["upsample_initial_channel"]),
            upsample_rates=tuple(int(x) for x in g["upsample_rates"]),
            upsample_kernel_sizes=tuple(int(x) for x in g["upsample_kernel_sizes"]),
            resblock_kernel_sizes=tuple(int(x) for x in g["resblock_kernel_sizes"]),
            resblock_dilation_sizes=tuple(
                tuple(int(x) for x in d) for d in g["resblock_dilation_sizes"]
            ),
            mpd_periods=tuple(int(x) for x in _get(hp, "mpd", "periods", (2, 3, 5, 7, 11))),
            mpd_kernel_size=int(_get(hp, "mpd", "kernel_size", 5)),
            mpd_stride=int(_get(hp, "mpd", "stride", 3)),
            lrelu_slope=float(_get(hp, "mpd", "lReLU_slope", 0.2)),
            mrd_resolutions=_resolutions(
                _get(hp, "mrd", "resolutions", base.model.mrd_resolutions)
            ),
        )
        t = hp.get("train") or {}
        train = dataclasses.replace(
            base.train,
            seed=int(t.get("seed", base.train.seed)),
            batch_size=int(t.get("batch_size", base.train.batch_size)),
            learning_rate=float(t.get("learning_rate", base.train.learning_rate)),
            betas=tuple(float(x) for x in t.get("betas", base.train.betas)),
            eps=float(t.get("eps", base.train.eps)),
            lr_decay=float(t.get("lr_decay", base.train.lr_decay)),
            accum_step=int(t.get("accum_step", base.train.accum_step)),
            c_stft=float(t.get("c_stft", base.train.c_stft)),
            c_mel=float(t.get("c_mel", base.train.c_mel)),
            c_kl=float(t.get("c_kl", base.train.c_kl)),
        )
        if _get(hp, "mpd", "use_spectral_norm") or _get(hp, "mrd", "use_spectral_norm"):
            raise BadInputError("5.0 hparams with use_spectral_norm: true are not supported")
        return SVCConfig(audio=audio, model=model, train=train, name=name)
    except (KeyError, TypeError, ValueError, AttributeError, ArithmeticError) as exc:
        raise BadInputError(f"5.0 hparams: missing or bad value ({short(exc)})") from exc


def hparams_to_dict(config: SVCConfig) -> dict[str, Any]:
    """Our config -> 5.0's hparams mapping (``hp_str`` of files 5.0 can read)."""
    a, m, t = config.audio, config.model, config.train
    return {
        "train": {
            "model": "sovits", "seed": t.seed, "epochs": 10000,
            "learning_rate": t.learning_rate, "betas": list(t.betas), "lr_decay": t.lr_decay,
            "eps": t.eps, "batch_size": t.batch_size, "accum_step": t.accum_step,
            "c_stft": t.c_stft, "c_mel": t.c_mel, "c_kl": t.c_kl,
            "pretrain": "./vits_pretrain/sovits5.0.pretrain.pth",
        },
        "data": {
            "segment_size": a.segment_size, "max_wav_value": 32768.0,
            "sampling_rate": a.sample_rate, "filter_length": a.n_fft,
            "hop_length": a.hop_length, "win_length": a.win_length, "mel_channels": a.n_mels,
            "mel_fmin": a.f_min, "mel_fmax": a.f_max,
        },
        "vits": {
            "ppg_dim": m.ppg_dim, "vec_dim": m.vec_dim, "spk_dim": m.spk_dim,
            "gin_channels": m.gin_channels, "inter_channels": m.inter_channels,
            "hidden_channels": m.hidden_channels, "filter_channels": m.filter_channels,
        },
        "gen": {
            "upsample_input": m.upsample_input,
            "upsample_rates": list(m.upsample_rates),
            "upsample_kernel_sizes": list(m.upsample_kernel_sizes),
            "upsample_initial_channel": m.upsample_initial_channel,
            "resblock_kernel_sizes": list(m.resblock_kernel_sizes),
            "resblock_dilation_sizes": [list(d) for d in m.resblock_dilation_sizes],
        },
        "mpd": {
            "periods": list(m.mpd_periods), "kernel_size": m.mpd_kernel_size,
            "stride": m.mpd_stride, "use_spectral_norm": False, "lReLU_slope": m.lrelu_slope,
        },
        "mrd": {
            "resolutions": str([tuple(r) for r in m.mrd_resolutions]),
            "use_spectral_norm": False, "lReLU_slope": m.lrelu_slope,
        },
    }  # fmt: skip


def load_hparams_yaml(source: str | os.PathLike | None, text: str | None = None) -> dict:
    """5.0's hparams (a file, or the ``hp_str`` text of a checkpoint) as a mapping; at most
    :data:`~svc_core.archive.MAX_YAML_BYTES` (checked before parsing), ``yaml.safe_load``."""
    if text is None:
        if source is None:
            raise BadInputError("no hparams given")
        p = Path(source)
        if not p.is_file():
            raise BadInputError(f"hparams file {p} does not exist")
        if p.stat().st_size > MAX_YAML_BYTES:
            raise BadInputError(f"hparams file {p.name} is larger than 1 MiB")
        data = load_yaml(p.read_bytes(), "the 5.0 hparams file", error=BadInputError)
    else:
        data = load_yaml(text, "the 5.0 hparams text (hp_str)", error=BadInputError)
    if not isinstance(data, dict):
        raise BadInputError("the 5.0 hparams are not a YAML mapping")
    return data


@dataclass
class Sovits5File:
    """A 5.0 model file read from disk.

    Attributes:
        layout: ``"pretrain"``, ``"checkpoint"`` or ``"export"``.
        config: the sizes (from ``hp_str``, the given hparams, or 5.0's base).
        config_source: where the sizes came from, for messages.
        generator: ``model_g`` with parametrisation keys.
        discriminator: ``model_d`` (parametrisation keys) or None (export).
        optim_g, optim_d: AdamW state dicts (checkpoint only).
        step, epoch: counters (checkpoint only).
    """

    layout: str
    config: SVCConfig
    config_source: str
    generator: dict[str, Any]
    discriminator: dict[str, Any] | None = None
    optim_g: dict[str, Any] | None = None
    optim_d: dict[str, Any] | None = None
    step: int | None = None
    epoch: int | None = None


def is_sovits5_dict(obj: Any) -> bool:
    return isinstance(obj, dict) and "model_g" in obj and "format" not in obj


def parse_sovits5(
    obj: dict[str, Any], path: Path, hparams: str | os.PathLike | None = None
) -> Sovits5File:
    """Interpret a loaded 5.0 dict. ``hparams``: a 5.0 YAML for files without ``hp_str``.

    Raises:
        BadInputError / IncompatibleError: bad hparams, or the file's content is not what 5.0
            writes (never a KeyError/ValueError of the hostile content itself).
    """
    if not _is_state_dict(obj.get("model_g")):
        raise IncompatibleError(f"{path.name}: 'model_g' is not a state dict of tensors")
    if obj.get("model_d") is not None and not _is_state_dict(obj["model_d"]):
        raise IncompatibleError(f"{path.name}: 'model_d' is not a state dict of tensors")
    keys = set(obj)
    if {"optim_g", "optim_d", "step"} <= keys:
        layout = "checkpoint"
    elif "model_d" in keys:
        layout = "pretrain"
    else:
        layout = "export"
    if isinstance(obj.get("hp_str"), str):
        hp, source = load_hparams_yaml(None, obj["hp_str"]), "the file's hp_str"
        config = config_from_hparams(hp, name=path.stem)
    elif hparams is not None:
        hp, source = load_hparams_yaml(hparams), f"hparams {Path(hparams).name}"
        config = config_from_hparams(hp, name=path.stem)
    else:
        config, source = load_config("base"), "5.0's base.yaml (no hp_str, no hparams given)"
        config = dataclasses.replace(config, name=path.stem)
    d = obj.get("model_d")
    try:
        return Sovits5File(
            layout=layout,
            config=config,
            config_source=source,
            generator=from_legacy(obj["model_g"]),
            discriminator=from_legacy(d) if isinstance(d, dict) else None,
            optim_g=obj.get("optim_g") if layout == "checkpoint" else None,
            optim_d=obj.get("optim_d") if layout == "checkpoint" else None,
            step=int(obj["step"]) if layout == "checkpoint" else None,
            epoch=int(obj["epoch"]) if layout == "checkpoint" and "epoch" in obj else None,
        )
    except (KeyError, TypeError, ValueError, OverflowError) as exc:
        raise IncompatibleError(
            f"{path.name}: a bad value where 5.0 writes a number ({short(exc)})"
        ) from exc


def _is_state_dict(value: Any) -> bool:
    import torch

    return isinstance(value, dict) and all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in value.items()
    )


# the generator's sizes a config may ask for: far above 5.0's (hidden 192, filter 640,
# upsample 320, 6 layers, 4 flows), far below what would take more than a generator file;
# and the signal settings a conversion runs at (5.0: 32 kHz, hop 320, n_fft 1024, 100 mels)
_MAX_CHANNELS = 1 << 14
_MAX_COUNT = 64
_COUNTS = ("n_heads", "n_layers", "posterior_layers", "n_flows", "flow_layers", "harmonic_num")
_AUDIO_RANGES = {
    "sample_rate": (8000, 192_000),
    "hop_length": (1, 4096),
    "n_fft": (16, 16384),
    "win_length": (16, 16384),
    "n_mels": (1, 1024),
    "segment_size": (1, 1 << 20),
}


def check_model_sizes(config: SVCConfig, source: str) -> None:
    """Refuse a config whose generator could not be a real one, or whose signal settings no
    real voice has (before anything is built, or converted with it)."""
    a = config.audio
    for key, (lo, hi) in _AUDIO_RANGES.items():
        x = getattr(a, key)
        if isinstance(x, bool) or not isinstance(x, int) or not lo <= x <= hi:
            raise IncompatibleError(f"{source}: audio.{key} = {x!r} is out of range")
    m = config.model
    for f in dataclasses.fields(m):
        value = getattr(m, f.name)
        values = [value] if not isinstance(value, tuple) else list(value)
        if len(values) > _MAX_COUNT:
            raise IncompatibleError(f"{source}: model.{f.name} has {len(values)} entries")
        flat = [x for v in values for x in (v if isinstance(v, tuple) else (v,))]
        limit = _MAX_COUNT if f.name in _COUNTS else _MAX_CHANNELS
        for x in flat:
            if isinstance(x, bool) or not isinstance(x, (int, float)):
                raise IncompatibleError(f"{source}: model.{f.name} is not a number")
            if isinstance(x, int) and not 0 <= x <= limit:
                raise IncompatibleError(f"{source}: model.{f.name} = {x} is out of range")


def check_generator_fits(config: SVCConfig, state: dict[str, Any], what: str, source: str) -> None:
    """The inference generator of ``config`` built on torch's meta device (no memory, so a
    config asking for an absurd model costs nothing) and compared with ``state``: the same
    names and shapes, or a plain IncompatibleError naming what differs. After this, building
    it for real takes what the state's tensors take."""
    import torch

    from svc_core.model.builders import build_generator

    check_model_sizes(config, source)
    given = {k: v for k, v in state.items() if not k.startswith(TRAIN_ONLY_PREFIXES)}
    try:
        with torch.device("meta"):
            gen = build_generator(config, inference_only=True)
    except Exception as exc:  # noqa: BLE001 - a config the modules cannot be built from
        raise IncompatibleError(f"a generator cannot be built from {source}: {short(exc)}") from exc
    check_state_fits(gen, given, what, source)


def check_state_fits(
    module: Any, state: dict[str, Any], what: str, source: str, *, ignore_prefixes=()
) -> None:
    """Raise IncompatibleError naming missing, unexpected and mis-shaped tensors."""
    own = {k: v for k, v in module.state_dict().items() if not k.startswith(tuple(ignore_prefixes))}
    given = {k: v for k, v in state.items() if not k.startswith(tuple(ignore_prefixes))}
    missing = sorted(set(own) - set(given))
    unexpected = sorted(set(given) - set(own))
    shapes = [
        f"{k} {tuple(given[k].shape)} vs {tuple(own[k].shape)}"
        for k in sorted(set(own) & set(given))
        if hasattr(given[k], "shape") and tuple(given[k].shape) != tuple(own[k].shape)
    ]
    if not (missing or unexpected or shapes):
        return
    parts = []
    if shapes:
        parts.append(f"{len(shapes)} tensors differ in shape (file vs model), e.g. {shapes[0]}")
    if missing:
        parts.append(f"{len(missing)} missing, e.g. {to_legacy({missing[0]: 0}).popitem()[0]}")
    if unexpected:
        parts.append(
            f"{len(unexpected)} unexpected, e.g. {to_legacy({unexpected[0]: 0}).popitem()[0]}"
        )
    raise IncompatibleError(
        f"{what} does not fit the model built from {source}: " + "; ".join(parts)
    )


def read_torch_file(path: Path) -> Any:
    """``torch.load(weights_only=True)`` (no code execution) of a zip-format torch file whose
    zip directory passed :data:`~svc_core.archive.TORCH_FILE_LIMITS` first; a damaged,
    legacy-format or oversized file is an IncompatibleError in plain words."""
    import torch

    path = Path(path)
    check_zip(
        path,
        TORCH_FILE_LIMITS,
        f"model file {path.name}",
        not_zip=f"{path.name} is not a readable model file: not a zip-format torch file "
        "(torch.save writes one since torch 1.6; older files: load and save it again)",
    )
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - pickle, zip and torch errors alike
        raise IncompatibleError(f"{path.name} is not a readable model file: {short(exc)}") from exc


__all__ = [
    "Sovits5File",
    "check_generator_fits",
    "check_model_sizes",
    "check_state_fits",
    "config_from_hparams",
    "from_legacy",
    "hparams_to_dict",
    "is_sovits5_dict",
    "parse_sovits5",
    "read_torch_file",
    "to_legacy",
]
