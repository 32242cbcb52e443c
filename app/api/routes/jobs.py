from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from app.api.deps import CurrentUser, SessionDep, SettingsDep, not_found
from app.api.routes.common import (
    IdempotencyKeyHeader,
    WebhookUrlQuery,
    artifact_public,
    creating_jobs,
    ensure_not_busy,
    idempotency_of,
)
from app.api.schemas import ArtifactPublic, JobPublic
from app.core import jobstate
from app.core.db import crud
from app.core.db.models import JobStatus
from app.core.db.session import get_sessionmaker

router = APIRouter(prefix="/jobs", tags=["jobs"])


@router.get("", response_model=list[JobPublic])
def list_jobs(
    user: CurrentUser,
    session: SessionDep,
    status: JobStatus | None = None,
    voice_id: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0, le=2**31 - 1)] = 0,
) -> list[JobPublic]:
    return [
        JobPublic.model_validate(j)
        for j in crud.list_jobs(
            session,
            user_id=user.id,
            status=status,
            voice_id=voice_id,
            limit=limit,
            offset=offset,
        )
    ]


@router.get("/{job_id}", response_model=JobPublic)
def get_job(job_id: str, user: CurrentUser, session: SessionDep) -> JobPublic:
    job = crud.get_job(session, user_id=user.id, job_id=job_id)
    if job is None:
        raise not_found("Job")
    return JobPublic.model_validate(job)


@router.get("/{job_id}/artifacts", response_model=list[ArtifactPublic])
def job_artifacts(job_id: str, user: CurrentUser, session: SessionDep) -> list[ArtifactPublic]:
    if crud.get_job(session, user_id=user.id, job_id=job_id) is None:
        raise not_found("Job")
    return [
        artifact_public(a) for a in crud.list_artifacts(session, user_id=user.id, job_id=job_id)
    ]


@router.post("/{job_id}/cancel", response_model=JobPublic)
def cancel_job(job_id: str, user: CurrentUser, session: SessionDep) -> JobPublic:
    """Cancel a queued job at once; a running job stops at its next check (training saves a
    checkpoint first)."""
    job = crud.get_job(session, user_id=user.id, job_id=job_id)
    if job is None:
        raise not_found("Job")
    if job.status in jobstate.TERMINAL:
        raise HTTPException(409, f"The job has already {job.status}.")
    jobstate.cancel(session, job=job)
    session.commit()
    session.refresh(job)
    return JobPublic.model_validate(job)


@router.post("/{job_id}/retry", response_model=JobPublic, status_code=202)
def retry_job(
    job_id: str,
    request: Request,
    user: CurrentUser,
    session: SessionDep,
    settings: SettingsDep,
    idempotency_key: IdempotencyKeyHeader = None,
    webhook_url: WebhookUrlQuery = None,
) -> JobPublic:
    """Run a failed or cancelled job again from the stage where it stopped (finished stages
    are not repeated; training resumes from its last checkpoint)."""
    job = crud.get_job(session, user_id=user.id, job_id=job_id)
    if job is None:
        raise not_found("Job")
    idem = idempotency_of(request, idempotency_key, None, webhook_url)
    with creating_jobs(
        session, settings, user_id=user.id, idem=idem, webhook_url=webhook_url
    ) as jobs:
        if job.status not in jobstate.RETRYABLE:
            raise HTTPException(
                409, f"Only failed or cancelled jobs can be retried; this one is {job.status}."
            )
        ensure_not_busy(
            session, kind=job.kind, voice_id=job.voice_id, conversion_id=job.conversion_id
        )
        if not jobstate.retry(session, job=job):
            raise HTTPException(409, "The job changed meanwhile; reload it.")
        jobs.send(job)
        jobs.answer(202, JobPublic.model_validate(job))
    return JobPublic.model_validate(job)


@router.get(
    "/{job_id}/events",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}}},
)
async def job_events(
    job_id: str, request: Request, user: CurrentUser, settings: SettingsDep
) -> StreamingResponse:
    """Server-Sent Events: a ``job`` event with the job's state whenever it changes; the stream
    ends after the job finishes."""
    maker = get_sessionmaker(settings.database_url)
    user_id = user.id

    def load() -> JobPublic | None:
        with maker() as s:
            job = crud.get_job(s, user_id=user_id, job_id=job_id)
            return JobPublic.model_validate(job) if job else None

    first = await run_in_threadpool(load)
    if first is None:
        raise not_found("Job")

    async def stream() -> AsyncIterator[str]:
        last, idle = "", 0.0
        current: JobPublic | None = first
        yield "retry: 2000\n\n"
        while current is not None:
            data = current.model_dump_json()
            if data != last:
                last, idle = data, 0.0
                yield f"event: job\nid: {current.updated_at.timestamp()}\ndata: {data}\n\n"
                if current.status in jobstate.TERMINAL:
                    yield f"event: end\ndata: {json.dumps({'status': current.status})}\n\n"
                    return
            elif idle >= 15:
                idle = 0.0
                yield ": keep-alive\n\n"
            if await request.is_disconnected():
                return
            await asyncio.sleep(0.5)
            idle += 0.5
            current = await run_in_threadpool(load)

    return StreamingResponse(
        stream(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
