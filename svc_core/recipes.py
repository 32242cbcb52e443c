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
