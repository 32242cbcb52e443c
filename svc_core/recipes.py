"""What a training run starts from, decided once for the CLI pipeline and the workers.

so-vits-svc 5.0's pretrain is what makes a few songs and a few hundred epochs usable, so it
is the default start whenever it is installed and the run can use it: the ``base`` config
and 5.0's content features (whisper large: 1280-d PPG, HuBERT-soft: 256-d vec). A voice
fine-tuned from it must be conditioned on the speaker vectors the pretrain learned with:
5.0's own LSTM speaker encoder (``sovits5-speaker``), averaged plainly over the slices.

Where the pretrain cannot be used, the plan says why in plain words and training starts from
scratch with GE2E (Resemblyzer) speaker embeddings, unless 5.0's encoder is installed.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path

from svc_core.errors import AssetMissingError, BadInputError

# defaults written once, for the API, the workers and the CLI (bench/retrieval.md for the
# retrieval ones: 0.75 moves a source singer's features most of the way to the target)
DEFAULT_PPG_MODEL = "whisper-large-v2"
DEFAULT_VEC_MODEL = "hubert-soft"
DEFAULT_TARGET_LUFS = -20.0
DEFAULT_RETRIEVAL_RATIO = 0.75
DEFAULT_PROTECT = 0.33
DEFAULT_VOLUME_ENVELOPE = 1.0

SOVITS5_PRETRAIN = "sovits5-pretrain"
SOVITS5_SPEAKER = "sovits5-speaker"
SCRATCH = "none"  # base_model value that asks for a run from scratch
SPEAKER_ENCODERS = ("ge2e", "sovits5")
# content encoders whose widths are the pretrain's (1280-d whisper PPG, 256-d HuBERT-soft)
_PRETRAIN_PPG = ("whisper-large-v2", "whisper-large-v3", "whisper-large")
_PRETRAIN_VEC = ("hubert-soft",)


@dataclass(frozen=True)
class StartPlan:
    """Attributes:
    base_model: asset name or file to fine-tune from; None = from scratch.
    speaker_encoder: ``"sovits5"`` (5.0's LSTM d-vector) or ``"ge2e"`` (Resemblyzer).
    reason: one plain sentence: what the run starts from and why.
    """

    base_model: str | None
    speaker_encoder: str
    reason: str

    def to_dict(self) -> dict:
        return asdict(self)


def _installed(name: str, models_dir: Path) -> bool:
    from svc_core.assets import is_installed

    return is_installed(name, models_dir)


def _missing(name: str, models_dir: Path) -> AssetMissingError:
    from svc_core.assets import missing_message

    return AssetMissingError(missing_message(name, models_dir))


def _pretrain_misfit(config: str, ppg_model: str | None, vec_model: str | None) -> str | None:
    if config != "base":
        return f"the '{config}' config has other sizes than 5.0's pretrain"
    if ppg_model not in _PRETRAIN_PPG or vec_model not in _PRETRAIN_VEC:
        return (
            "5.0's pretrain needs whisper-large-v2 PPG + hubert-soft vec content features "
            f"(this run uses {ppg_model or 'no PPG'} + {vec_model or 'no vec'})"
        )
    return None


def plan_start(
    base_model: str | None,
    *,
    config: str,
    ppg_model: str | None,
    vec_model: str | None,
    models_dir: str | os.PathLike,
    speaker_encoder: str | None = None,
) -> StartPlan:
    """Decide the run's start and speaker encoder.

    Args:
        base_model: None = automatic (5.0's pretrain when installed and usable);
            ``"none"`` = from scratch; an asset name or a model file otherwise.
        config: the model config name (``base``, ``tiny``) or path.
        ppg_model, vec_model: content-encoder asset names (None = not used).
        models_dir: the pretrained-assets folder.
        speaker_encoder: force ``ge2e`` or ``sovits5`` (None = follow the base model).

    Raises:
        BadInputError: an explicit choice that cannot work (wrong content features for 5.0's
            pretrain, an unknown speaker encoder).
        AssetMissingError: an explicitly chosen asset is not installed (names the command).
    """
    models = Path(models_dir)
    if speaker_encoder is not None and speaker_encoder not in SPEAKER_ENCODERS:
        raise BadInputError(f"unknown speaker encoder '{speaker_encoder}' (ge2e or sovits5)")
    have_spk = _installed(SOVITS5_SPEAKER, models)
    fallback_encoder = speaker_encoder or ("sovits5" if have_spk else "ge2e")

    def need_sovits5_encoder(enc: str) -> None:
        if enc == "sovits5" and not have_spk:
            raise _missing(SOVITS5_SPEAKER, models)

    if base_model == SCRATCH:
        need_sovits5_encoder(fallback_encoder)
        return StartPlan(None, fallback_encoder, "from scratch (as asked)")
    if base_model == SOVITS5_PRETRAIN or base_model is None:
        misfit = _pretrain_misfit(config, ppg_model, vec_model)
        explicit = base_model is not None
        if explicit and misfit:
            raise BadInputError(f"cannot fine-tune from {SOVITS5_PRETRAIN}: {misfit}")
        if not _installed(SOVITS5_PRETRAIN, models):
            if explicit:
                raise _missing(SOVITS5_PRETRAIN, models)
            need_sovits5_encoder(fallback_encoder)
            return StartPlan(
                None,
                fallback_encoder,
                "from scratch: so-vits-svc 5.0's pretrain is not installed "
                "(`svc-studio assets pull --preset sovits5` fetches it)",
            )
        if misfit:
            need_sovits5_encoder(fallback_encoder)
            return StartPlan(None, fallback_encoder, f"from scratch: {misfit}")
        if speaker_encoder == "ge2e":
            raise BadInputError(
                "5.0's pretrain was trained on 5.0's speaker vectors: fine-tuning it needs "
                "speaker_encoder sovits5 (or base_model 'none' to train from scratch)"
            )
        if not have_spk:
            if explicit:
                need_sovits5_encoder("sovits5")
            return StartPlan(
                None,
                "ge2e",
                "from scratch: 5.0's pretrain is installed but not its speaker encoder "
                f"(`svc-studio assets pull {SOVITS5_SPEAKER}`)",
            )
        return StartPlan(SOVITS5_PRETRAIN, "sovits5", "fine-tuning so-vits-svc 5.0's pretrain")
    # another asset or a model file of the user's
    need_sovits5_encoder(speaker_encoder or "ge2e")
    return StartPlan(base_model, speaker_encoder or "ge2e", f"fine-tuning {Path(base_model).name}")


def resolve_base_model(
    name_or_path: str | None, models_dir: str | os.PathLike, *, allow_files: bool = False
) -> Path | None:
    """A plan's ``base_model`` as a file: an asset's path, or (``allow_files``: the CLI, never
    the web API) a file of the user's."""
    if not name_or_path or name_or_path == SCRATCH:
        return None
    from svc_core.assets import REGISTRY, asset_path

    if name_or_path in REGISTRY:
        return asset_path(name_or_path, models_dir)
    if not allow_files:
        raise BadInputError(f"base model '{name_or_path}' is not an asset (svc-studio assets list)")
    path = Path(name_or_path)
    if not path.is_file():
        raise BadInputError(f"base model '{name_or_path}' is neither an asset nor a file")
    return path


# --- request + device -> engine parameters ---------------------------------------------------
# One resolver for `svc-studio pipeline` and the workers' stages: the defaults that depend on
# the device (F0 method, separation model) and on what the voice has (retrieval index) are
# chosen here and nowhere else. Engine modules are imported inside the functions so this module
# stays importable by the API process (no torch).


def choose_f0_method(requested: str | None, *, cuda: bool) -> str:
    """The F0 method's canonical name: the requested one, else the device's recommendation
    (crepe full on a GPU, FCPE on a CPU)."""
    from svc_core.f0.base import canonical_method, recommended_method

    return canonical_method(requested or recommended_method(cuda))


def choose_retrieval_ratio(requested: float | None, *, has_index: bool) -> float:
    """None means: retrieval at the default ratio when the voice has an index, else off."""
    if requested is None:
        return DEFAULT_RETRIEVAL_RATIO if has_index else 0.0
    return float(requested)


@dataclass(frozen=True)
class Features:
    """A voice's feature settings, chosen once when its dataset is built and stored with the
    voice, so conversion reuses exactly what training used.

    Attributes:
        config: model config name (its sample rate and hop are copied here).
        f0_method: canonical F0 method name.
        ppg_model, vec_model: content-encoder asset names (None = not used).
        speaker_encoder: ``sovits5`` or ``ge2e``.
        start: the start plan (``StartPlan.to_dict()``): base model and why.
        target_lufs: slices' loudness before features (None = as they are).
    """

    config: str
    f0_method: str
    ppg_model: str | None
    vec_model: str | None
    speaker_encoder: str
    start: dict
    sample_rate: int
    hop_length: int
    target_lufs: float | None = DEFAULT_TARGET_LUFS

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> Features:
        """Read stored settings (older voices lack some fields: their defaults apply)."""
        return cls(
            config=d.get("config") or "base",
            f0_method=d["f0_method"],
            ppg_model=d.get("ppg_model"),
            vec_model=d.get("vec_model"),
            speaker_encoder=d.get("speaker_encoder") or "ge2e",
            start=dict(d.get("start") or {}),
            sample_rate=int(d.get("sample_rate") or 32000),
            hop_length=int(d.get("hop_length") or 320),
            target_lufs=d.get("target_lufs", DEFAULT_TARGET_LUFS),
        )


def choose_features(
    *,
    models_dir: str | os.PathLike,
    cuda: bool,
    config: str = "base",
    f0_method: str | None = None,
    ppg_model: str | None = DEFAULT_PPG_MODEL,
    vec_model: str | None = DEFAULT_VEC_MODEL,
    base_model: str | None = None,
    speaker_encoder: str | None = None,
    target_lufs: float | None = DEFAULT_TARGET_LUFS,
) -> Features:
    """A training request on a device → the voice's feature settings (with the start plan)."""
    from svc_core.model.config import load_config

    if not ppg_model and not vec_model:
        raise BadInputError("Choose a PPG model, a vec model or both for the content features.")
    plan = plan_start(
        base_model,
        config=config,
        ppg_model=ppg_model or None,
        vec_model=vec_model or None,
        models_dir=models_dir,
        speaker_encoder=speaker_encoder,
    )
    cfg = load_config(config)
    return Features(
        config=config,
        f0_method=choose_f0_method(f0_method, cuda=cuda),
        ppg_model=ppg_model or None,
        vec_model=vec_model or None,
        speaker_encoder=plan.speaker_encoder,
        start=plan.to_dict(),
        sample_rate=cfg.audio.sample_rate,
        hop_length=cfg.audio.hop_length,
        target_lufs=target_lufs,
    )


def _asset(name: str | None, models_dir: str | os.PathLike) -> str | None:
    from svc_core.assets import asset_path

    return str(asset_path(name, models_dir)) if name else None


def preprocess_params(
    features: Features,
    *,
    models_dir: str | os.PathLike,
    device: str,
    with_speaker: bool = True,
    f0_method: str | None = None,
):
    """Engine settings (``svc_core.preprocess.PreprocessParams``) of a voice's features on
    ``device`` (a torch device name; ``with_speaker=False``: conversion, which needs no
    speaker encoder; ``f0_method``: a conversion's override of the voice's method)."""
    from dataclasses import replace

    from svc_core.preprocess import params_for

    method = choose_f0_method(f0_method or features.f0_method, cuda=device != "cpu")
    encoder = features.speaker_encoder if with_speaker else "ge2e"
    params = params_for(
        features.config,  # sample rate and hop; conversion uses the model's
        f0_method=method,
        ppg_checkpoint=_asset(features.ppg_model, models_dir),
        vec_checkpoint=_asset(features.vec_model, models_dir),
        device=device,
        f0_weights=_asset("rmvpe", models_dir) if method == "rmvpe" else None,
        speaker_encoder=encoder,
        speaker_model=_asset(SOVITS5_SPEAKER, models_dir) if encoder == "sovits5" else None,
    )
    return replace(params, target_lufs=features.target_lufs)


def separation_params(
    model: str | None,
    *,
    cuda: bool,
    dereverb: bool = False,
    vocals_only: bool = False,
    max_duration_s: float | None = None,
):
    """``svc_core.separation.SeparationParams``: the requested model, else the device's
    default; 5.0-style dereverb as a second pass; vocals-only inputs skip the main pass."""
    from svc_core.separation import DEREVERB_MODEL, SeparationParams, default_model

    extra = {} if max_duration_s is None else {"max_duration_s": max_duration_s}
    return SeparationParams(
        model=model or default_model(cuda),
        second_pass=DEREVERB_MODEL if dereverb else None,
        input_kind="vocals" if vocals_only else "mixture",
        **extra,
    )


def convert_params(
    features: Features,
    *,
    models_dir: str | os.PathLike,
    device: str,
    has_index: bool,
    f0_method: str | None = None,
    transpose: float | str | None = 0.0,
    retrieval_ratio: float | None = None,
    protect: float = DEFAULT_PROTECT,
    volume_envelope: float = DEFAULT_VOLUME_ENVELOPE,
):
    """``svc_core.convert.engine.ConvertParams`` for a voice: its F0 method (unless
    overridden) and content encoders; ``transpose`` "auto" or None = into the voice's range."""
    from svc_core.convert.engine import ConvertParams

    base = preprocess_params(
        features, models_dir=models_dir, device=device, with_speaker=False, f0_method=f0_method
    )
    return ConvertParams(
        transpose=None if transpose in (None, "auto") else float(transpose),  # type: ignore[arg-type]
        f0=base.f0,
        content=base.content,
        retrieval_ratio=choose_retrieval_ratio(retrieval_ratio, has_index=has_index),
        protect=float(protect),
        volume_envelope=float(volume_envelope),
    )


# --- preflight: the models a request needs, checked before a job is queued -------------------


def _not_installed(models_dir: str | os.PathLike, names: list[str]) -> list[str]:
    from svc_core.assets import REGISTRY, is_installed

    out = []
    for name in dict.fromkeys(names):
        present = (
            is_installed(name, models_dir)
            if name in REGISTRY
            else (Path(models_dir) / name).is_file()  # another audio-separator model file
        )
        if not present:
            out.append(name)
    return out


def _separation_missing(
    models_dir: str | os.PathLike, model: str | None, *, dereverb: bool, separate: bool
) -> list[str]:
    from svc_core.separation.models import DEREVERB_MODEL, default_model

    missing = []
    if separate:
        if model:
            missing += _not_installed(models_dir, [model])
        else:  # the worker's device picks one of the two defaults: one of them must be there
            defaults = [default_model(False), default_model(True)]
            if len(_not_installed(models_dir, defaults)) == len(defaults):
                missing.append(default_model(False))
    if dereverb:
        missing += _not_installed(models_dir, [DEREVERB_MODEL])
    return missing


def missing_for_training(
    models_dir: str | os.PathLike,
    *,
    config: str = "base",
    f0_method: str | None = None,
    ppg_model: str | None = DEFAULT_PPG_MODEL,
    vec_model: str | None = DEFAULT_VEC_MODEL,
    base_model: str | None = None,
    speaker_encoder: str | None = None,
    separation_model: str | None = None,
    dereverb: bool = False,
    separate: bool = True,
) -> list[str]:
    """The models a training request needs that ``models_dir`` lacks, found in
    milliseconds (no model is loaded): content encoders, RMVPE weights when asked for, what
    the start plan needs (5.0's pretrain and encoder when asked for), the separation model
    (``separate``: some reference is not vocals-only already) and the dereverb pass.

    Raises:
        BadInputError: the request cannot work whatever is installed (start plan rules)."""
    names = [n for n in (ppg_model, vec_model) if n]
    if f0_method == "rmvpe":
        names.append("rmvpe")
    missing = _not_installed(models_dir, names)
    try:
        plan_start(
            base_model,
            config=config,
            ppg_model=ppg_model or None,
            vec_model=vec_model or None,
            models_dir=models_dir,
            speaker_encoder=speaker_encoder,
        )
    except AssetMissingError:
        for name in (SOVITS5_PRETRAIN, SOVITS5_SPEAKER, base_model):
            if name and name != SCRATCH:
                try:
                    missing += _not_installed(models_dir, [name])
                except Exception:  # noqa: BLE001 - a file path of the CLI's: not an asset
                    continue
    missing += _separation_missing(
        models_dir, separation_model, dereverb=dereverb, separate=separate
    )
    return list(dict.fromkeys(missing))


def missing_for_conversion(
    models_dir: str | os.PathLike,
    features: dict,
    *,
    f0_method: str | None = None,
    separation_model: str | None = None,
    separate: bool = True,
    dereverb: bool = False,
) -> list[str]:
    """The models converting into a voice with ``features`` (its stored settings) needs that
    ``models_dir`` lacks: the voice's content encoders, RMVPE weights when used, the
    separation model unless the song is vocals-only (and the dereverb pass when asked for:
    an index build's songs)."""
    names = [n for n in (features.get("ppg_model"), features.get("vec_model")) if n]
    if (f0_method or features.get("f0_method")) == "rmvpe":
        names.append("rmvpe")
    missing = _not_installed(models_dir, names)
    missing += _separation_missing(
        models_dir, separation_model, dereverb=dereverb, separate=separate
    )
    return list(dict.fromkeys(missing))


def missing_models_message(what: str, missing: list[str], models_dir: str | os.PathLike) -> str:
    names = " ".join(missing)
    return (
        f"{what} needs models that are not installed in {models_dir}: {', '.join(missing)}. "
        f"Install them with `svc-studio assets pull {names}` (or `svc-studio assets import "
        "NAME FILE` on a machine without a network), then start again."
    )
