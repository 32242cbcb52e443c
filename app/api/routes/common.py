"""Shared helpers for the routers: public views, and the one way a route starts jobs."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from fastapi import HTTPException
from pydantic import BaseModel
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from app.api.schemas import ArtifactPublic, ConversionPublic, JobPublic, TrackPublic, VoicePublic
from app.api.uploads import ParsedUpload, UploadedFile, move_into, safe_extension
from app.core import jobstate, keys
from app.core.config import Settings
from app.core.db import crud
from app.core.db.models import Artifact, Conversion, Job, Track, TrackRole, TrackStatus, Voice
from app.core.names import PIPELINES, JobKind
from app.core.params import job_params
from app.core.queue import send_and_record, send_stage
from app.core.storage import LocalStorage

log = logging.getLogger(__name__)


def artifact_public(a: Artifact) -> ArtifactPublic:
    out = ArtifactPublic.model_validate(a)
    out.download_url = f"/api/v1/artifacts/{a.id}/download"
    return out


def voice_public(session: Session, v: Voice) -> VoicePublic:
    out = VoicePublic.model_validate(v)
    out.tracks = [
        TrackPublic.model_validate(t)
        for t in crud.list_tracks(session, user_id=v.user_id, voice_id=v.id)
    ]
    out.artifacts = [
        artifact_public(a)
        for a in crud.list_artifacts(session, user_id=v.user_id, voice_id=v.id)
        if a.track_id is None
    ]
    jobs = crud.list_jobs(session, user_id=v.user_id, voice_id=v.id, limit=1)
    out.latest_job = JobPublic.model_validate(jobs[0]) if jobs else None
    return out


def conversion_public(session: Session, c: Conversion) -> ConversionPublic:
    out = ConversionPublic.model_validate(c)
    track = crud.get_track(session, user_id=c.user_id, track_id=c.source_track_id)
    out.source_track = TrackPublic.model_validate(track) if track else None
    jobs = crud.list_jobs(session, user_id=c.user_id, conversion_id=c.id, limit=1)
    out.job = JobPublic.model_validate(jobs[0]) if jobs else None
    out.artifacts = [
        artifact_public(a)
        for a in crud.list_artifacts(session, user_id=c.user_id, conversion_id=c.id)
    ]
    return out


def enqueue(session: Session, settings: Settings, job: Job) -> None:
    """Commit the job row first, then send its current stage: a worker never sees a job id
    that is not in the database yet. A broker that is down does not lose the request (see
    ``send_and_record``)."""
    session.commit()
    stage = job.stage
    assert stage is not None
    send_and_record(
        session,
        lambda: send_stage(settings, job_id=job.id, stage=stage),
        job_id=job.id,
        stage=stage,
    )
    try:  # show the recorded status line; the job itself is safe either way
        session.refresh(job)
    except OperationalError as exc:
        log.warning("job %s: could not reload it: %s", job.id, exc)


BUSY = "Another job is running for the same voice or conversion: wait for it or cancel it."


def ensure_not_busy(
    session: Session,
    *,
    kind: JobKind,
    voice_id: str | None = None,
    conversion_id: str | None = None,
    message: str = BUSY,
) -> None:
    """409 when a job of ``kind`` would race an active one: a conversion runs one job at a
    time (convert, re-mix), a voice trains once at a time."""
    if conversion_id is not None:
        busy = list(crud.active_jobs_for(session, conversion_id=conversion_id))
    elif kind == JobKind.voice and voice_id is not None:
        busy = [j for j in crud.active_jobs_for(session, voice_id=voice_id) if j.kind == kind]
    else:
        busy = []
    if busy:
        raise HTTPException(409, message)


@dataclass
class NewJobs:
    """The jobs a request creates (see ``creating_jobs``)."""

    session: Session
    settings: Settings
    user_id: str
    jobs: list[Job] = field(default_factory=list)
    #: storage prefixes this request wrote to: removed if the request fails
    stored: list[str] = field(default_factory=list)

    def add(
        self,
        kind: JobKind,
        params: BaseModel,
        *,
        voice_id: str | None = None,
        conversion_id: str | None = None,
    ) -> Job:
        """A queued job of ``kind`` running its pipeline's stages, with its typed
        parameters (validated again by the worker against the same model)."""
        job = jobstate.create(
            self.session,
            user_id=self.user_id,
            kind=kind,
            stages=PIPELINES[kind],
            params=job_params(kind, params),
            voice_id=voice_id,
            conversion_id=conversion_id,
            max_attempts=self.settings.max_attempts,
        )
        self.jobs.append(job)
        return job


@contextmanager
def creating_jobs(
    session: Session,
    settings: Settings,
    *,
    user_id: str,
    storage: LocalStorage | None = None,
    upload: ParsedUpload | None = None,
) -> Iterator[NewJobs]:
    """What every job-creating route does: the rows it adds inside the block (tracks,
    conversions, jobs through ``NewJobs.add``) are committed together, then each job's first
    stage is sent. Any error rolls everything back, deletes the upload's temporary files and
    the storage prefixes listed in ``NewJobs.stored``, so a failed request leaves nothing."""
    new = NewJobs(session, settings, user_id)
    try:
        yield new
        session.commit()
    except BaseException:
        session.rollback()
        if upload is not None:
            upload.cleanup()
        if storage is not None:
            for prefix in new.stored:
                storage.delete_prefix(prefix)
        raise
    for job in new.jobs:
        enqueue(session, settings, job)


def add_uploaded_track(
    session: Session,
    storage: LocalStorage,
    up: UploadedFile,
    *,
    user_id: str,
    role: TrackRole,
    voice_id: str | None,
    vocals_only: bool,
) -> Track:
    """Record an uploaded file as a track and move it to its final key (the original, kept)."""
    track = Track(
        user_id=user_id,
        voice_id=voice_id,
        role=role,
        filename=up.filename,
        content_type=up.content_type,
        size_bytes=up.size,
        sha256=up.sha256,
        storage_key="",
        vocals_only=vocals_only,
        status=TrackStatus.uploaded,
    )
    session.add(track)
    session.flush()
    track.storage_key = keys.track(user_id, track.id, f"original{safe_extension(up.filename)}")
    move_into(storage, up, track.storage_key)
    return track


BINARY = {"type": "string", "format": "binary"}
FILES = {"type": "array", "items": BINARY}  # the repeated form field ``files``


def multipart_body(properties: dict, required: list[str]) -> dict:
    """``openapi_extra`` documenting a multipart/form-data body that the route parses itself
    (uploads are streamed, so FastAPI never sees them as parameters)."""
    return {
        "requestBody": {
            "required": True,
            "content": {
                "multipart/form-data": {
                    "schema": {"type": "object", "properties": properties, "required": required}
                }
            },
        }
    }
