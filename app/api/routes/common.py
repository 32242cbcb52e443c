"""Shared helpers for the routers: public views and enqueueing."""

from __future__ import annotations

import logging

from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from app.api.schemas import ArtifactPublic, ConversionPublic, JobPublic, TrackPublic, VoicePublic
from app.api.uploads import UploadedFile, move_into, safe_extension
from app.core.config import Settings
from app.core.db import crud
from app.core.db.models import Artifact, Conversion, Job, Track, TrackRole, TrackStatus, Voice
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
    """Commit the job row first, then send its first stage: a worker never sees a job id
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
        role=role.value,
        filename=up.filename,
        content_type=up.content_type,
        size_bytes=up.size,
        sha256=up.sha256,
        storage_key="",
        vocals_only=vocals_only,
        status=TrackStatus.uploaded.value,
    )
    session.add(track)
    session.flush()
    track.storage_key = f"u/{user_id}/tracks/{track.id}/original{safe_extension(up.filename)}"
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
