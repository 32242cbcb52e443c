"""Shared helpers for the routers: public views, and the one way a route starts jobs."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

from fastapi import Header, HTTPException, Query, Request
from pydantic import BaseModel
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from app.api.schemas import (
    ArtifactPublic,
    ConversionPublic,
    JobPublic,
    TrackPublic,
    UploadResult,
    VoicePublic,
)
from app.api.uploads import (
    ParsedUpload,
    UploadedFile,
    form_flag,
    move_into,
    parse_upload,
    safe_extension,
)
from app.core import idempotency, jobstate, keys, webhooks
from app.core.config import Settings
from app.core.db import crud
from app.core.db.models import (
    Artifact,
    Conversion,
    IdempotencyKey,
    Job,
    Track,
    TrackRole,
    TrackStatus,
    User,
    Voice,
)
from app.core.idempotency import Idempotency
from app.core.names import PIPELINES, JobKind
from app.core.params import IngestParams, job_params
from app.core.queue import send_and_record, send_stage
from app.core.storage import LocalStorage
from svc_core import recipes
from svc_core.errors import BadInputError

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


VOICE_DATA_KINDS = (JobKind.voice, JobKind.voice_index)
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
    time (convert, re-mix), a voice trains or builds its index once at a time."""
    if conversion_id is not None:
        busy = list(crud.active_jobs_for(session, conversion_id=conversion_id))
    elif kind in VOICE_DATA_KINDS and voice_id is not None:
        # training and an index build both separate and slice the voice's songs
        busy = [
            j
            for j in crud.active_jobs_for(session, voice_id=voice_id)
            if j.kind in VOICE_DATA_KINDS
        ]
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
    #: the request's Idempotency-Key row (None without a key)
    key_row: IdempotencyKey | None = None
    answered: bool = False
    #: the webhook of the jobs it creates (the request's, else the user's default), and
    #: whether the request named one (a retried job keeps its own unless it did)
    webhook_url: str | None = None
    webhook_given: bool = False

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
        job.webhook_url = self.webhook_url
        self.jobs.append(job)
        return job

    def send(self, job: Job) -> None:
        """Send an existing job's current stage after the commit (a retried job). Its next
        ending is a new webhook event."""
        if self.webhook_given:
            job.webhook_url = self.webhook_url
        job.webhook = None
        self.jobs.append(job)

    def answer(self, status_code: int, response: BaseModel | list[BaseModel]) -> None:
        """What the route answers; kept with the Idempotency-Key for a repeated request."""
        if self.key_row is not None:
            data = (
                [r.model_dump(mode="json") for r in response]
                if isinstance(response, list)
                else response.model_dump(mode="json")
            )
            idempotency.answer(self.key_row, status_code, data)
        self.answered = True


@contextmanager
def creating_jobs(
    session: Session,
    settings: Settings,
    *,
    user_id: str,
    storage: LocalStorage | None = None,
    upload: ParsedUpload | None = None,
    idem: Idempotency | None = None,
    webhook_url: str | None = None,
) -> Iterator[NewJobs]:
    """What every job-creating route does: the rows it adds inside the block (tracks,
    conversions, jobs through ``NewJobs.add``) are committed together with its answer
    (``NewJobs.answer``), then each job's first stage is sent. With an Idempotency-Key
    (``idem``) the key is taken first: a repeated request raises ``idempotency.Replay``
    (answered with the first answer) before anything is created. Any error rolls everything
    back, deletes the upload's temporary files and the storage prefixes listed in
    ``NewJobs.stored``, so a failed request leaves nothing. ``webhook_url`` (the request's
    query parameter) is checked first: a host the server may not call is refused (422)."""
    new = NewJobs(session, settings, user_id)
    try:
        new.webhook_url = job_webhook(session, settings, user_id=user_id, url=webhook_url)
        new.webhook_given = webhook_url is not None
        if idem is not None:
            new.key_row = idempotency.claim(
                session, user_id=user_id, idem=idem, ttl_s=settings.idempotency_ttl_s
            )
        yield new
        if not new.answered:
            raise RuntimeError("a job-creating route must record its answer (NewJobs.answer)")
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


def remove_conversion(session: Session, conv: Conversion) -> list[str]:
    """Delete a conversion's rows, and its source song's when the song was uploaded with it
    and no other conversion uses it (a song uploaded on its own stays). Returns the storage
    prefixes to delete once the deletion is committed."""
    prefixes = [keys.conversion(conv.user_id, conv.id)]
    track = crud.get_track(session, user_id=conv.user_id, track_id=conv.source_track_id)
    others = [
        c
        for c in crud.conversions_of_track(session, track_id=conv.source_track_id)
        if c is not conv
    ]
    session.delete(conv)
    if track is not None and track.conversion_upload and not others:
        session.delete(track)
        prefixes.append(keys.track(conv.user_id, track.id))
    return prefixes


def preflight(settings: Settings, what: str, check: Callable[[Path], list[str]]) -> None:
    """409 naming the models a job would need and that are not installed, before it is
    queued (the worker keeps its own check). ``check(models_dir)`` lists the missing."""
    if not settings.preflight_models:
        return
    try:
        missing = check(settings.models_dir)
    except BadInputError as exc:
        raise HTTPException(400, str(exc)) from exc
    if missing:
        raise HTTPException(
            409,
            recipes.missing_models_message(what, missing, settings.models_dir)
            + " In the browser, the Models page downloads or imports them.",
        )


IdempotencyKeyHeader = Annotated[
    str | None,
    Header(
        alias=idempotency.HEADER,
        description="Optional. The same key with the same request gives the first answer "
        "again and creates nothing (kept at least 24 hours); with another request, 422.",
    ),
]


WebhookUrlQuery = Annotated[
    str | None,
    Query(
        max_length=webhooks.MAX_URL,
        description="Optional. Called with a signed JSON event when the job ends (succeeded, "
        "failed or cancelled); the host must be allowed by the server. Without it, your "
        "default webhook (PUT /api/v1/me/webhook) is used; empty: none for this request.",
    ),
]

NO_SECRET = (
    "Create your webhook secret first (POST /api/v1/me/webhook-secret; it is shown once): "
    "webhook events are signed with it."
)


def job_webhook(
    session: Session, settings: Settings, *, user_id: str, url: str | None
) -> str | None:
    """The webhook URL of a request's jobs: ``url`` once it is checked (422 in words if the
    server may not call it), the user's default without one, none for an empty one."""
    if url == "":
        return None
    user = session.get(User, user_id)
    if url is None:
        return user.webhook_url if user is not None else None
    try:
        webhooks.check_url(url, settings)
    except webhooks.WebhookRefused as exc:
        raise HTTPException(422, str(exc)) from exc
    if user is None or not user.webhook_secret:
        raise HTTPException(422, NO_SECRET)
    return url


def idempotency_of(
    request: Request, key: str | None, body: Any, webhook_url: str | None = None
) -> Idempotency | None:
    """The request's Idempotency-Key and a fingerprint of what it asks (``body``, and the
    ``webhook_url`` parameter when given)."""
    if webhook_url is not None:
        body = {**(body or {}), "webhook_url": webhook_url}
    try:
        return idempotency.request(key, request.method, request.url.path, body)
    except idempotency.KeyInvalid as exc:
        raise HTTPException(400, str(exc)) from exc


def upload_body(parsed: ParsedUpload) -> dict[str, Any]:
    """What a multipart request asks: its fields and its files' names and hashes."""
    return {
        "fields": parsed.fields,
        "files": [[f.field, f.filename, f.sha256, f.size] for f in parsed.files],
    }


async def receive_tracks(
    request: Request,
    session: Session,
    settings: Settings,
    storage: LocalStorage,
    *,
    user_id: str,
    role: TrackRole,
    voice_id: str | None,
    idempotency_key: str | None,
    webhook_url: str | None,
) -> UploadResult:
    """An upload of songs (streamed to storage, hashed on the way), then their tracks and
    ingest job, the database work off the event loop (SQLite's waits would block it)."""
    parsed = await parse_upload(
        request,
        storage,
        max_file_bytes=settings.max_upload_bytes,
        max_files=settings.max_files_per_upload,
    )
    idem = idempotency_of(request, idempotency_key, upload_body(parsed), webhook_url)
    return await run_in_threadpool(
        upload_tracks_job,
        session,
        settings,
        storage,
        parsed,
        user_id=user_id,
        role=role,
        voice_id=voice_id,
        idem=idem,
        webhook_url=webhook_url,
    )


def upload_tracks_job(
    session: Session,
    settings: Settings,
    storage: LocalStorage,
    parsed: ParsedUpload,
    *,
    user_id: str,
    role: TrackRole,
    voice_id: str | None,
    idem: Idempotency | None,
    webhook_url: str | None = None,
) -> UploadResult:
    """Uploaded songs become tracks (their originals kept) and one ingest job decodes them."""
    if not parsed.files:
        parsed.cleanup()
        raise HTTPException(400, "No files in the upload (use the form field 'files').")
    vocals_only = form_flag(parsed.fields, "vocals_only")
    tracks: list[Track] = []
    with creating_jobs(
        session,
        settings,
        user_id=user_id,
        storage=storage,
        upload=parsed,
        idem=idem,
        webhook_url=webhook_url,
    ) as jobs:
        for up in parsed.files:
            track = add_uploaded_track(
                session,
                storage,
                up,
                user_id=user_id,
                role=role,
                voice_id=voice_id,
                vocals_only=vocals_only,
            )
            tracks.append(track)
            jobs.stored.append(keys.track(user_id, track.id))
        job = jobs.add(
            JobKind.ingest, IngestParams(track_ids=[t.id for t in tracks]), voice_id=voice_id
        )
        jobs.answer(201, upload_result(tracks, job))
    return upload_result(tracks, job)


def upload_result(tracks: list[Track], job: Job) -> UploadResult:
    return UploadResult(
        tracks=[TrackPublic.model_validate(t) for t in tracks], job=JobPublic.model_validate(job)
    )


def add_uploaded_track(
    session: Session,
    storage: LocalStorage,
    up: UploadedFile,
    *,
    user_id: str,
    role: TrackRole,
    voice_id: str | None,
    vocals_only: bool,
    conversion_upload: bool = False,
) -> Track:
    """Record an uploaded file as a track and move it to its final key (the original, kept)."""
    track = Track(
        user_id=user_id,
        voice_id=voice_id,
        role=role,
        conversion_upload=conversion_upload,
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
#: a download's body in a response's OpenAPI ``content`` (its real type is in Content-Type)
BINARY_BODY = {"application/octet-stream": {"schema": BINARY}}
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
