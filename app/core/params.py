"""Job parameters: one pydantic model per job kind. The API validates a request into it and
stores its JSON on the job; the worker parses the stored JSON with the same model, so both
sides read the same typed fields and the same defaults. Engine defaults that depend on the
worker's device (F0 method, separation model) stay None here and are chosen by
``svc_core.recipes``, for the CLI pipeline and the workers alike.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from app.core.names import JobKind
from svc_core import recipes

F0Method = Literal["crepe", "crepe-full", "crepe-tiny", "fcpe", "harvest", "dio", "praat", "rmvpe"]


class SlicerOptions(BaseModel):
    """Audio Slicer settings (defaults: openvpi's) plus the longest slice."""

    model_config = ConfigDict(extra="forbid")
    threshold_db: float = Field(default=-40.0, ge=-90, le=-10)
    min_length_ms: int = Field(default=5000, ge=300, le=60_000)
    min_interval_ms: int = Field(default=300, ge=20, le=10_000)
    max_sil_kept_ms: int = Field(default=500, ge=10, le=10_000)
    max_length_s: float = Field(default=15.0, ge=0, le=120)


class TrainRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    config: Literal["base", "tiny"] = "base"
    # None: crepe full on a GPU worker, FCPE on a CPU one (crepe full is 3x slower than
    # real time on a CPU). The method is stored with the voice and reused for conversion.
    f0_method: F0Method | None = None
    # content encoders by asset name (svc-studio assets list); null = not used
    ppg_model: str | None = Field(default=recipes.DEFAULT_PPG_MODEL, max_length=100)
    vec_model: str | None = Field(default=recipes.DEFAULT_VEC_MODEL, max_length=100)
    separation_model: str | None = None
    dereverb: bool = False
    max_steps: int | None = Field(default=None, ge=1, le=10_000_000)
    max_epochs: int | None = Field(default=None, ge=1, le=100_000)
    max_minutes: float | None = Field(default=None, gt=0, le=7 * 24 * 60)
    # None: so-vits-svc 5.0's pretrain when it is installed and fits (base config, whisper
    # large + hubert-soft); "none": from scratch; else an asset name (svc-studio assets list)
    base_model: str | None = Field(default=None, max_length=200)
    # the speaker vectors the voice is conditioned on; None: 5.0's encoder when installed
    # (the 5.0 pretrain needs it), else GE2E
    speaker_encoder: Literal["ge2e", "sovits5"] | None = None
    slicer: SlicerOptions = Field(default_factory=SlicerOptions)
    # slices are loudness-normalised to this before features are computed; null = as they are
    target_lufs: float | None = Field(default=recipes.DEFAULT_TARGET_LUFS, ge=-40, le=-6)


class ConversionOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    transpose: int | Literal["auto"] = 0
    f0_method: F0Method | None = None  # None: the voice's own
    vocal_gain_db: float = Field(default=0.0, ge=-24, le=24)
    reverb: float = Field(default=0.0, ge=0, le=1)
    output_format: Literal["wav16", "wav24", "flac", "mp3"] = "wav16"
    separation_model: str | None = None
    transpose_instrumental: bool = True
    # blend the target with another of your voices: (1 - w) * target + w * other
    mix_voice_id: str | None = Field(default=None, max_length=36)
    mix_weight: float = Field(default=0.5, ge=0, le=1)
    # feature retrieval: blend of the source's content features with the voice's nearest
    # training frames (its index is built at the end of training); 0 = off; None = 0.75 when
    # the voice has an index, else 0 (bench/retrieval.md)
    retrieval_ratio: float | None = Field(default=None, ge=0, le=1)
    # RVC's protect: keep 1 - protect of the original features on unvoiced frames; 0.5 = off
    protect: float = Field(default=recipes.DEFAULT_PROTECT, ge=0, le=0.5)
    # RVC's rms_mix_rate: 1 keeps the output's loudness, 0 gives it the source's envelope
    volume_envelope: float = Field(default=recipes.DEFAULT_VOLUME_ENVELOPE, ge=0, le=1)


class RemixRequest(BaseModel):
    """Settings of a new mix of already converted vocals (no re-conversion)."""

    model_config = ConfigDict(extra="forbid")
    vocal_gain_db: float = Field(default=0.0, ge=-24, le=24)
    reverb: float = Field(default=0.0, ge=0, le=1)
    output_format: Literal["wav16", "wav24", "flac", "mp3"] = "wav16"
    transpose_instrumental: bool = True


class IngestParams(BaseModel):
    """Decode uploaded tracks (an upload's own job)."""

    model_config = ConfigDict(extra="forbid")
    track_ids: list[str] = Field(min_length=1)


class ConversionParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    options: ConversionOptions = Field(default_factory=ConversionOptions)
    track_ids: list[str] = Field(min_length=1, max_length=1)  # the source song


class RemixParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    options: RemixRequest = Field(default_factory=RemixRequest)


class VoiceImportParams(BaseModel):
    """An uploaded voice: an svc-studio package, or so-vits-svc 5.0's model + speaker vector
    (+ hparams), already stored under these keys."""

    model_config = ConfigDict(extra="forbid")
    filename: str
    sha256: str
    storage_key: str  # the package, or 5.0's model
    format: Literal["package", "sovits5"] = "package"
    f0_method: F0Method | None = None
    speaker_key: str | None = None
    hparams_key: str | None = None


class IndexRequest(BaseModel):
    """(Re)build a voice's retrieval index from its reference songs: how they are separated
    and sliced (as for training). The content encoders are the voice's own."""

    model_config = ConfigDict(extra="forbid")
    separation_model: str | None = None
    dereverb: bool = False
    slicer: SlicerOptions = Field(default_factory=SlicerOptions)


class ModelDownloadParams(BaseModel):
    """Registry names of the models to download (svc_core.assets), in order."""

    model_config = ConfigDict(extra="forbid")
    names: list[str] = Field(min_length=1, max_length=50)


PARAMS: dict[JobKind, type[BaseModel]] = {
    JobKind.ingest: IngestParams,
    JobKind.voice: TrainRequest,
    JobKind.conversion: ConversionParams,
    JobKind.remix: RemixParams,
    JobKind.voice_import: VoiceImportParams,
    JobKind.model_download: ModelDownloadParams,
    JobKind.voice_index: IndexRequest,
}


def job_params(kind: JobKind, params: BaseModel) -> dict[str, Any]:
    """The JSON stored on a job of ``kind``; refuses a model of another kind."""
    model = PARAMS[JobKind(kind)]
    if not isinstance(params, model):
        raise TypeError(f"a {kind} job takes {model.__name__}, not {type(params).__name__}")
    return params.model_dump(mode="json")


def parse_params(kind: JobKind | str, raw: dict[str, Any] | None) -> Any:
    """A stored job's parameters as its kind's model (the worker's side of ``job_params``)."""
    return PARAMS[JobKind(kind)].model_validate(raw or {})
