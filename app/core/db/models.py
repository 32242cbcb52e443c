"""SQLAlchemy 2.0 models. The database is the source of truth for job state."""

from __future__ import annotations

import enum
import uuid
from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from app.core.names import ArtifactKind, JobKind, Stage

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_id() -> str:
    return str(uuid.uuid4())


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON}


class JobStatus(enum.StrEnum):
    queued = "queued"
    running = "running"
    succeeded = "succeeded"
    failed = "failed"
    cancelled = "cancelled"


class TrackRole(enum.StrEnum):
    reference = "reference"
    source = "source"


class TrackStatus(enum.StrEnum):
    uploaded = "uploaded"
    ready = "ready"
    failed = "failed"


class VoiceStatus(enum.StrEnum):
    created = "created"
    training = "training"
    ready = "ready"
    failed = "failed"


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite stores them naive)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is not None:
            value = value.astimezone(UTC)
        if value is not None and dialect.name == "sqlite":
            value = value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value


Timestamp = UTCDateTime()
E = TypeVar("E", bound=enum.StrEnum)


class StrEnumColumn(TypeDecorator[E]):
    """A StrEnum stored as its value in a VARCHAR (no database enum type, so adding a member
    needs no migration). Reads give the member back; a value this version does not know (a
    newer API or worker wrote it during a rolling upgrade) is read as the plain string, never
    an error. Writes refuse values outside the enum, except in a ``lenient`` column: stage
    names, which a worker older than the API must carry along (and fail plainly on)."""

    impl = String
    cache_ok = True

    def __init__(self, enum_cls: type[E], length: int, *, lenient: bool = False) -> None:
        super().__init__(length)
        self.enum_cls = enum_cls
        self.lenient = lenient

    def process_bind_param(self, value: E | str | None, dialect: Any) -> str | None:
        if value is None:
            return None
        if self.lenient and value not in self.enum_cls._value2member_map_:
            return str(value)
        return self.enum_cls(value).value

    def process_result_value(self, value: str | None, dialect: Any) -> E | None:
        if value is None:
            return None
        return self.enum_cls._value2member_map_.get(value, value)  # type: ignore[arg-type, return-value]


class User(Base):
    __tablename__ = "users"
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)
    # webhooks: the HMAC-SHA256 key job events are signed with (shown to the user once), and
    # the URL called when a job names none
    webhook_secret: Mapped[str | None] = mapped_column(String(100), nullable=True)
    webhook_url: Mapped[str | None] = mapped_column(String(2000), nullable=True)

    tokens: Mapped[list[ApiToken]] = relationship(back_populates="user", cascade="all, delete")


class ApiToken(Base):
    __tablename__ = "api_tokens"
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100), default="")
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(12))  # first characters, to tell tokens apart
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(Timestamp, nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(Timestamp, nullable=True)

    user: Mapped[User] = relationship(back_populates="tokens")


class BrowserSession(Base):
    """A signed-in browser: its cookie holds a random id whose hash is stored here (never the
    API token). Logout deletes the row; so does revoking the token it was opened with (the
    token's row going) or its expiry passing."""

    __tablename__ = "browser_sessions"
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_id: Mapped[str] = mapped_column(
        ForeignKey("api_tokens.id", ondelete="CASCADE"), index=True
    )
    secret_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(Timestamp, index=True)

    token: Mapped[ApiToken] = relationship()


class Voice(Base):
    __tablename__ = "voices"
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[VoiceStatus] = mapped_column(
        StrEnumColumn(VoiceStatus, 20), default=VoiceStatus.created
    )
    settings: Mapped[dict[str, Any]] = mapped_column(default=dict)
    report: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow, onupdate=utcnow)


class Track(Base):
    __tablename__ = "tracks"
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    voice_id: Mapped[str | None] = mapped_column(
        ForeignKey("voices.id", ondelete="CASCADE"), index=True, nullable=True
    )
    role: Mapped[TrackRole] = mapped_column(StrEnumColumn(TrackRole, 20))
    filename: Mapped[str] = mapped_column(String(255))  # the user's name, sanitised for display
    content_type: Mapped[str] = mapped_column(String(100), default="application/octet-stream")
    size_bytes: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    storage_key: Mapped[str] = mapped_column(String(500))  # the original upload, kept as is
    vocals_only: Mapped[bool] = mapped_column(Boolean, default=False)
    # uploaded together with a conversion (the multipart route): deleted with its last
    # conversion; a track uploaded on its own stays until it is deleted itself
    conversion_upload: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")
    status: Mapped[TrackStatus] = mapped_column(
        StrEnumColumn(TrackStatus, 20), default=TrackStatus.uploaded
    )
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    meta: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    ingested_at: Mapped[datetime | None] = mapped_column(Timestamp, nullable=True)
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)


class Job(Base):
    __tablename__ = "jobs"
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    kind: Mapped[JobKind] = mapped_column(StrEnumColumn(JobKind, 30, lenient=True))
    status: Mapped[JobStatus] = mapped_column(
        StrEnumColumn(JobStatus, 20), default=JobStatus.queued, index=True
    )
    stages: Mapped[list[Any]] = mapped_column(default=list)  # ordered stage names
    stage: Mapped[Stage | None] = mapped_column(  # current / last stage
        StrEnumColumn(Stage, 30, lenient=True), nullable=True
    )
    stage_progress: Mapped[float] = mapped_column(Float, default=0.0)
    progress: Mapped[float] = mapped_column(Float, default=0.0)  # whole job, 0..1
    eta_s: Mapped[float | None] = mapped_column(Float, nullable=True)
    message: Mapped[str | None] = mapped_column(Text, nullable=True)  # what it is doing now
    error: Mapped[str | None] = mapped_column(Text, nullable=True)  # plain words, for users
    traceback: Mapped[str | None] = mapped_column(Text, nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer, default=3)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    params: Mapped[dict[str, Any]] = mapped_column(default=dict)
    state: Mapped[dict[str, Any]] = mapped_column(default=dict)  # per-stage results / resume data
    # called when the job ends; ``webhook`` records the deliveries (attempts, answers)
    webhook_url: Mapped[str | None] = mapped_column(String(2000), nullable=True)
    webhook: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    metrics: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    voice_id: Mapped[str | None] = mapped_column(
        ForeignKey("voices.id", ondelete="CASCADE"), index=True, nullable=True
    )
    conversion_id: Mapped[str | None] = mapped_column(
        ForeignKey("conversions.id", ondelete="CASCADE"), index=True, nullable=True
    )
    worker: Mapped[str | None] = mapped_column(String(200), nullable=True)
    heartbeat_at: Mapped[datetime | None] = mapped_column(Timestamp, nullable=True)
    stage_started_at: Mapped[datetime | None] = mapped_column(Timestamp, nullable=True)
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)
    queued_at: Mapped[datetime | None] = mapped_column(Timestamp, nullable=True)
    # when the broker accepted the message for the current queued stage; NULL while a queued
    # job's message is still unsent (broker down), which the workers' sweep re-sends
    dispatched_at: Mapped[datetime | None] = mapped_column(Timestamp, nullable=True)
    started_at: Mapped[datetime | None] = mapped_column(Timestamp, nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(Timestamp, nullable=True)
    updated_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow, onupdate=utcnow)

    __table_args__ = (Index("ix_jobs_status_heartbeat", "status", "heartbeat_at"),)


class Conversion(Base):
    __tablename__ = "conversions"
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    voice_id: Mapped[str] = mapped_column(ForeignKey("voices.id", ondelete="CASCADE"), index=True)
    source_track_id: Mapped[str] = mapped_column(
        ForeignKey("tracks.id", ondelete="CASCADE"), index=True
    )
    options: Mapped[dict[str, Any]] = mapped_column(default=dict)
    report: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)


class Artifact(Base):
    __tablename__ = "artifacts"
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    kind: Mapped[ArtifactKind] = mapped_column(StrEnumColumn(ArtifactKind, 50))
    storage_key: Mapped[str] = mapped_column(String(500))
    sha256: Mapped[str] = mapped_column(String(64))
    size_bytes: Mapped[int] = mapped_column(Integer)
    content_type: Mapped[str] = mapped_column(String(100), default="application/octet-stream")
    filename: Mapped[str] = mapped_column(String(255), default="")
    meta: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    # what produced it, and for which inputs/parameters (re-runs reuse a matching artifact)
    job_id: Mapped[str | None] = mapped_column(
        ForeignKey("jobs.id", ondelete="SET NULL"), index=True, nullable=True
    )
    stage: Mapped[Stage | None] = mapped_column(
        StrEnumColumn(Stage, 30, lenient=True), nullable=True
    )
    inputs_key: Mapped[str | None] = mapped_column(String(64), index=True, nullable=True)
    voice_id: Mapped[str | None] = mapped_column(
        ForeignKey("voices.id", ondelete="CASCADE"), index=True, nullable=True
    )
    track_id: Mapped[str | None] = mapped_column(
        ForeignKey("tracks.id", ondelete="CASCADE"), index=True, nullable=True
    )
    conversion_id: Mapped[str | None] = mapped_column(
        ForeignKey("conversions.id", ondelete="CASCADE"), index=True, nullable=True
    )
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)


class IdempotencyKey(Base):
    """A job-creating request made with an ``Idempotency-Key``: what it asked (a fingerprint of
    method, path and body) and what it answered, so the same request again gets the same
    answer and creates nothing. Written in the request's own transaction."""

    __tablename__ = "idempotency_keys"
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(255))
    fingerprint: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    response: Mapped[Any] = mapped_column(JSON, nullable=True)
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow, index=True)

    __table_args__ = (UniqueConstraint("user_id", "key"),)


class WorkerBeat(Base):
    """Live workers report here; /health lists the ones seen recently."""

    __tablename__ = "worker_beats"
    name: Mapped[str] = mapped_column(String(200), primary_key=True)
    queues: Mapped[str] = mapped_column(String(200))
    hostname: Mapped[str] = mapped_column(String(200))
    pid: Mapped[int] = mapped_column(Integer)
    device: Mapped[str] = mapped_column(String(100), default="cpu")
    started_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)
    last_seen: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)
