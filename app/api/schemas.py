"""Pydantic I/O schemas, split Create / Update / Public."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from app.core.db.models import JobStatus, TrackRole, TrackStatus, VoiceStatus
from app.core.names import ArtifactKind

# the bodies that become job parameters are the infrastructure's (the worker parses them too)
from app.core.params import (
    ConversionOptions,
    F0Method,
    IndexRequest,
    RemixRequest,
    SlicerOptions,
    TrainRequest,
)

__all__ = [
    "ConversionOptions",
    "F0Method",
    "IndexRequest",
    "RemixRequest",
    "SlicerOptions",
    "TrainRequest",
]


def _no_nul(value: str) -> str:
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


# user-supplied text that is stored or looked up: PostgreSQL text cannot hold NUL
Text = Annotated[str, AfterValidator(_no_nul)]


class ORM(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class UserPublic(ORM):
    id: str
    name: str
    created_at: datetime


class LoginRequest(BaseModel):
    token: Text = Field(min_length=8, max_length=200)


# --- voices -------------------------------------------------------------------------------


class VoiceCreate(BaseModel):
    name: Text = Field(min_length=1, max_length=200)
    description: Text = Field(default="", max_length=5000)


class VoiceUpdate(BaseModel):
    name: Text | None = Field(default=None, min_length=1, max_length=200)
    description: Text | None = Field(default=None, max_length=5000)


class ArtifactPublic(ORM):
    id: str
    kind: ArtifactKind
    filename: str
    content_type: str
    size_bytes: int
    sha256: str
    stage: str | None
    job_id: str | None
    track_id: str | None
    voice_id: str | None
    conversion_id: str | None
    meta: dict[str, Any] | None
    created_at: datetime
    download_url: str = ""


class TrackPublic(ORM):
    id: str
    voice_id: str | None
    role: TrackRole
    filename: str
    content_type: str
    size_bytes: int
    sha256: str
    vocals_only: bool
    status: TrackStatus
    error: str | None
    meta: dict[str, Any] | None
    created_at: datetime
    ingested_at: datetime | None


class JobPublic(ORM):
    id: str
    kind: str  # a JobKind (a plain string: a newer worker's kinds are shown, not refused)
    status: JobStatus
    stages: list[str]
    stage: str | None
    stage_progress: float
    progress: float
    eta_s: float | None
    message: str | None
    error: str | None
    attempts: int
    max_attempts: int
    cancel_requested: bool
    params: dict[str, Any]
    metrics: dict[str, Any] | None
    voice_id: str | None
    conversion_id: str | None
    heartbeat_at: datetime | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    updated_at: datetime


# --- the voice's coverage report: one definition for the server, the spec and the page -----
# (svc_core.report.coverage.CoverageReport.to_dict() writes it; tests check that every key it
# writes is declared here.) Every field is optional: a report stored by an older version, or
# an imported voice's (histogram only), still reads.


class PitchRangePublic(BaseModel):
    """The voice's pitch range: its central 90 % of sung time (5th-95th percentile, ``low``
    and ``high``), its extremes and its median, as notes (``A3``), Hz and MIDI numbers."""

    model_config = ConfigDict(extra="allow")
    label: str | None = Field(default=None, description="``low_note``-``high_note``")
    low_note: str | None = None
    high_note: str | None = None
    low_hz: float | None = None
    high_hz: float | None = None
    low_midi: float | None = None
    high_midi: float | None = None
    min_note: str | None = None
    max_note: str | None = None
    min_hz: float | None = None
    max_hz: float | None = None
    median_note: str | None = None
    median_hz: float | None = None


class HistogramBinPublic(BaseModel):
    model_config = ConfigDict(extra="allow")
    midi: int | None = None
    note: str | None = None
    seconds: float | None = Field(default=None, description="Voiced seconds at this note")
    share: float | None = Field(default=None, description="Share of all voiced time")


class LoudnessPublic(BaseModel):
    model_config = ConfigDict(extra="allow")
    mean_lufs: float | None = None
    min_lufs: float | None = None
    max_lufs: float | None = None
    spread_db: float | None = None


class CoverageReportPublic(BaseModel):
    """What the voice's training data covers: amount, pitch range and histogram, loudness
    and warnings (written by preprocessing; an imported voice has its package's histogram)."""

    model_config = ConfigDict(extra="allow")
    slice_count: int | None = Field(default=None, description="Slices of singing used")
    total_s: float | None = Field(default=None, description="Seconds of audio after slicing")
    total_min: float | None = None
    voiced_s: float | None = Field(default=None, description="Of it, seconds sung (voiced)")
    voiced_share: float | None = None
    hop_s: float | None = None
    histogram: list[HistogramBinPublic] = []
    range: PitchRangePublic | None = None
    loudness: LoudnessPublic | None = None
    warnings: list[str] = []
    skipped: list[str] = Field(default=[], description="Slices left out, and why")
    imported: bool = False
    train: dict[str, Any] | None = None
    range_from: str | None = Field(
        default=None,
        description="'index songs': an imported voice's range, from the songs its index "
        "was built from",
    )


class VoicePublic(ORM):
    id: str
    name: str
    description: str
    status: VoiceStatus
    settings: dict[str, Any]
    report: CoverageReportPublic | None
    created_at: datetime
    updated_at: datetime
    tracks: list[TrackPublic] = []
    artifacts: list[ArtifactPublic] = []
    latest_job: JobPublic | None = None


class UploadResult(BaseModel):
    tracks: list[TrackPublic]
    job: JobPublic


class VoiceImportOptions(BaseModel):
    """The form fields of a voice import (beside its files ``files``, ``speaker``, ``hparams``)."""

    name: Text | None = Field(default=None, max_length=200)  # default: the file's name
    f0_method: F0Method | None = None  # a 5.0 model's F0 method (default: the engine's)


class ConversionRequest(BaseModel):
    """Convert source tracks already uploaded (``POST /api/v1/tracks``) into a voice."""

    model_config = ConfigDict(extra="forbid")
    voice_id: Text = Field(max_length=36)
    track_ids: list[Annotated[Text, Field(max_length=36)]] = Field(min_length=1, max_length=20)
    options: ConversionOptions = Field(default_factory=ConversionOptions)


class ConversionPublic(ORM):
    id: str
    voice_id: str
    source_track_id: str
    options: dict[str, Any]
    report: dict[str, Any] | None
    created_at: datetime
    source_track: TrackPublic | None = None
    job: JobPublic | None = None
    artifacts: list[ArtifactPublic] = []


# --- health -------------------------------------------------------------------------------


class WorkerPublic(ORM):
    name: str | None  # shown to authenticated callers only
    queues: str
    hostname: str | None
    device: str
    last_seen: datetime


class Health(BaseModel):
    status: Literal["ok", "degraded"]
    database: str
    broker: str
    workers: list[WorkerPublic]
    queues_without_workers: list[str]


# --- webhooks -------------------------------------------------------------------------------


class WebhookSettings(BaseModel):
    """The user's webhook: the URL called for jobs submitted without ``webhook_url``."""

    url: str | None = Field(description="The default webhook URL; null: none.")
    has_secret: bool = Field(description="Whether a signing secret exists (it is shown once).")
    secret: str | None = Field(
        default=None,
        description="The signing secret, only in the answer that created it: keep it now.",
    )


class WebhookSettingsUpdate(BaseModel):
    url: str | None = Field(
        default=None, max_length=2000, description="The default webhook URL; null removes it."
    )


class WebhookSecret(BaseModel):
    secret: str = Field(
        description="The HMAC-SHA256 key of the Svc-Webhook-Signature header. Shown only "
        "now; the previous secret no longer signs anything."
    )


class WebhookAttempt(BaseModel):
    at: datetime
    status_code: int | None = Field(description="The receiver's HTTP status; null: no answer.")
    error: str | None = Field(description="Why the attempt failed; null: delivered.")
    ms: int | None = None


class WebhookDelivery(BaseModel):
    """The delivery of a job's webhook event: every attempt, and what happens next."""

    job_id: str
    url: str | None
    state: Literal["none", "pending", "sending", "delivered", "gave_up"] = Field(
        description="none: the job has no webhook; pending: waiting for the job to end or "
        "for the next attempt; sending; delivered; gave_up: no 2xx answer within the hour."
    )
    event_id: str | None = None
    attempts: list[WebhookAttempt] = []
    next_at: datetime | None = None
    delivered_at: datetime | None = None


# --- models (pretrained assets) -------------------------------------------------------------


class ModelPublic(BaseModel):
    """A model of the registry (svc_core.assets) and its state in the server's models folder."""

    name: str
    kind: str = Field(description="content, f0, separation, sidecar, base_model or speaker")
    description: str
    filename: str
    size: int | None = Field(description="Published size in bytes, where known")
    installed_size: int | None = Field(description="Size of the installed file, if any")
    licence: str
    requires: list[str] = Field(description="Files downloaded with it (sidecars)")
    state: Literal["ok", "recorded", "unverified", "mismatch", "changed", "missing"] = Field(
        description="ok: matches the published hash; recorded: no published hash, the one it "
        "was installed with is kept; unverified: placed by hand, not hashed yet (verify=true "
        "hashes it); mismatch/changed: not the expected file; missing: not installed"
    )
    detail: str
    installed: bool


class PresetPublic(BaseModel):
    name: str
    description: str
    models: list[str]
    missing: list[str]
    note: str | None = None


class ModelsPublic(BaseModel):
    models_dir: str
    mirror: str | None = Field(description="SVC_MODELS_MIRROR, where downloads come from")
    models: list[ModelPublic]
    presets: list[PresetPublic]


class ModelDownloadRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    names: list[Annotated[Text, Field(max_length=100)]] = Field(default=[], max_length=50)
    preset: Text | None = Field(default=None, max_length=100)
