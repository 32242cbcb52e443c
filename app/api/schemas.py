"""Pydantic I/O schemas, split Create / Update / Public."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class ORM(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class UserPublic(ORM):
    id: str
    name: str
    created_at: datetime


class LoginRequest(BaseModel):
    token: str = Field(min_length=8, max_length=200)


# --- voices -------------------------------------------------------------------------------


class VoiceCreate(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    description: str = Field(default="", max_length=5000)


class VoiceUpdate(BaseModel):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=5000)


class ArtifactPublic(ORM):
    id: str
    kind: str
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
    role: str
    filename: str
    content_type: str
    size_bytes: int
    sha256: str
    vocals_only: bool
    status: str
    error: str | None
    meta: dict[str, Any] | None
    created_at: datetime
    ingested_at: datetime | None


class JobPublic(ORM):
    id: str
    kind: str
    status: str
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


class VoicePublic(ORM):
    id: str
    name: str
    description: str
    status: str
    settings: dict[str, Any]
    report: dict[str, Any] | None
    created_at: datetime
    updated_at: datetime
    tracks: list[TrackPublic] = []
    artifacts: list[ArtifactPublic] = []
    latest_job: JobPublic | None = None


class UploadResult(BaseModel):
    tracks: list[TrackPublic]
    job: JobPublic


# --- training and conversion options ------------------------------------------------------

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
    ppg_model: str | None = Field(default="whisper-large-v2", max_length=100)
    vec_model: str | None = Field(default="hubert-soft", max_length=100)
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
    target_lufs: float | None = Field(default=-20.0, ge=-40, le=-6)


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
    protect: float = Field(default=0.33, ge=0, le=0.5)
    # RVC's rms_mix_rate: 1 keeps the output's loudness, 0 gives it the source's envelope
    volume_envelope: float = Field(default=1.0, ge=0, le=1)


class RemixRequest(BaseModel):
    """Settings of a new mix of already converted vocals (no re-conversion)."""

    model_config = ConfigDict(extra="forbid")
    vocal_gain_db: float = Field(default=0.0, ge=-24, le=24)
    reverb: float = Field(default=0.0, ge=0, le=1)
    output_format: Literal["wav16", "wav24", "flac", "mp3"] = "wav16"
    transpose_instrumental: bool = True


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
    name: str
    queues: str
    hostname: str
    device: str
    last_seen: datetime


class Health(BaseModel):
    status: Literal["ok", "degraded"]
    database: str
    broker: str
    workers: list[WorkerPublic]
    queues_without_workers: list[str]
