from __future__ import annotations

import json

from fastapi import APIRouter, HTTPException, Request, status
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from app.api.deps import CurrentUser, SessionDep, SettingsDep, StorageDep, not_found
from app.api.routes.common import (
    FILES,
    IdempotencyKeyHeader,
    NewJobs,
    WebhookUrlQuery,
    add_uploaded_track,
    conversion_public,
    creating_jobs,
    ensure_not_busy,
    idempotency_of,
    preflight,
    remove_conversion,
    upload_body,
)
from app.api.schemas import (
    ConversionOptions,
    ConversionPublic,
    ConversionRequest,
    JobPublic,
    RemixRequest,
)
from app.api.uploads import form_flag, parse_upload
from app.core import keys
from app.core.config import Settings
from app.core.db import crud
from app.core.db.models import Conversion, TrackRole, TrackStatus
from app.core.idempotency import Idempotency
from app.core.names import ArtifactKind, JobKind
from app.core.params import ConversionParams, RemixParams
from svc_core import recipes

router = APIRouter(prefix="/conversions", tags=["conversions"])


MAX_JSON_BODY = 1 << 20  # a JSON conversion request is ids and options: 1 MiB is plenty


@router.post(
    "",
    response_model=list[ConversionPublic],
    status_code=status.HTTP_201_CREATED,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": {"$ref": "#/components/schemas/ConversionRequest"}},
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "properties": {
                            "voice_id": {"type": "string"},
                            "options": {"$ref": "#/components/schemas/ConversionOptions"},
                            "vocals_only": {"type": "boolean"},
                            "files": FILES,
                        },
                        "required": ["voice_id", "files"],
                    },
                    "encoding": {"options": {"contentType": "application/json"}},
                },
            },
        }
    },
)
async def create_conversions(
    request: Request,
    user: CurrentUser,
    session: SessionDep,
    settings: SettingsDep,
    storage: StorageDep,
    idempotency_key: IdempotencyKeyHeader = None,
    webhook_url: WebhookUrlQuery = None,
) -> list[ConversionPublic]:
    """Convert songs into a voice: one conversion and one job (ingest → separate → convert →
    mix → report) per song.

    - ``application/json`` (``ConversionRequest``): source tracks already uploaded
      (``POST /tracks``), by id; their decoding is reused.
    - ``multipart/form-data``: upload the songs with the request (``files``), the options
      as a JSON part.
    """
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media == "application/json":
        body = await _json_body(request)
        idem = idempotency_of(request, idempotency_key, body.model_dump(mode="json"), webhook_url)
        return await run_in_threadpool(
            _convert_tracks, session, settings, user.id, body, idem, webhook_url
        )
    parsed = await parse_upload(
        request,
        storage,
        max_file_bytes=settings.max_upload_bytes,
        max_files=settings.max_files_per_upload,
    )

    def finish() -> list[ConversionPublic]:  # DB work off the event loop (SQLite waits)
        try:
            try:
                options = ConversionOptions.model_validate(
                    json.loads(parsed.fields.get("options") or "{}")
                )
            except (ValueError, ValidationError) as exc:
                raise HTTPException(422, f"Invalid conversion options: {exc}") from exc
            if not parsed.files:
                raise HTTPException(400, "No files in the upload (use the form field 'files').")
            voice_id = parsed.fields.get("voice_id", "")
            _check_voices(session, user.id, voice_id, options)
            _preflight(
                session,
                settings,
                user.id,
                voice_id,
                options,
                vocals_only=[form_flag(parsed.fields, "vocals_only")],
            )
        except BaseException:
            parsed.cleanup()
            raise
        vocals_only = form_flag(parsed.fields, "vocals_only")
        idem = idempotency_of(request, idempotency_key, upload_body(parsed), webhook_url)
        with creating_jobs(
            session,
            settings,
            user_id=user.id,
            storage=storage,
            upload=parsed,
            idem=idem,
            webhook_url=webhook_url,
        ) as jobs:
            track_ids = []
            for up in parsed.files:
                track = add_uploaded_track(
                    session,
                    storage,
                    up,
                    user_id=user.id,
                    role=TrackRole.source,
                    voice_id=None,
                    vocals_only=vocals_only,
                    conversion_upload=True,
                )
                jobs.stored.append(keys.track(user.id, track.id))
                track_ids.append(track.id)
            created = _start(jobs, voice_id, options, track_ids)
        return [conversion_public(session, c) for c in created]

    return await run_in_threadpool(finish)


async def _json_body(request: Request) -> ConversionRequest:
    data = bytearray()
    async for chunk in request.stream():
        data += chunk
        if len(data) > MAX_JSON_BODY:
            raise HTTPException(413, f"A JSON request may be at most {MAX_JSON_BODY} bytes.")
    try:
        return ConversionRequest.model_validate_json(bytes(data))
    except ValidationError as exc:
        raise RequestValidationError(exc.errors(include_url=False)) from exc


def _check_voices(session: Session, user_id: str, voice_id: str, options: ConversionOptions):
    if crud.get_voice(session, user_id=user_id, voice_id=voice_id) is None:
        raise not_found("Voice")
    if options.mix_voice_id and not crud.get_voice(
        session, user_id=user_id, voice_id=options.mix_voice_id
    ):
        raise not_found("Voice to mix with")


def _preflight(
    session: Session,
    settings: Settings,
    user_id: str,
    voice_id: str,
    options: ConversionOptions,
    *,
    vocals_only: list[bool],
) -> None:
    """409 before any job when a model the conversion needs is missing (a voice not trained
    yet is the worker's to report: it knows no models yet)."""
    voice = crud.get_voice(session, user_id=user_id, voice_id=voice_id)
    features = ((voice.settings or {}).get("features") if voice is not None else None) or {}
    if not features:
        return
    preflight(
        settings,
        "This conversion",
        lambda models: recipes.missing_for_conversion(
            models,
            features,
            f0_method=options.f0_method,
            separation_model=options.separation_model,
            separate=not all(vocals_only),
        ),
    )


def _convert_tracks(
    session: Session,
    settings: Settings,
    user_id: str,
    body: ConversionRequest,
    idem: Idempotency | None,
    webhook_url: str | None = None,
) -> list[ConversionPublic]:
    """Conversions of source tracks already uploaded: their ingest is not repeated (the
    pipeline's ingest finds them decoded)."""
    with creating_jobs(
        session, settings, user_id=user_id, idem=idem, webhook_url=webhook_url
    ) as jobs:
        _check_voices(session, user_id, body.voice_id, body.options)
        for tid in body.track_ids:
            track = crud.get_track(session, user_id=user_id, track_id=tid)
            if track is None:
                raise not_found("Track")
            if track.role != TrackRole.source:
                raise HTTPException(
                    400,
                    f"'{track.filename}' is a reference song of a voice; upload it as a source "
                    "song (POST /api/v1/tracks) to convert it.",
                )
            if track.status == TrackStatus.failed:
                raise HTTPException(
                    400, f"'{track.filename}' could not be decoded: {track.error or 'no audio'}"
                )
        track_ids = list(dict.fromkeys(body.track_ids))
        _preflight(
            session,
            settings,
            user_id,
            body.voice_id,
            body.options,
            vocals_only=[t.vocals_only for t in crud.get_tracks_by_ids(session, ids=track_ids)],
        )
        created = _start(jobs, body.voice_id, body.options, track_ids)
    return [conversion_public(session, c) for c in created]


def _start(
    jobs: NewJobs, voice_id: str, options: ConversionOptions, track_ids: list[str]
) -> list[Conversion]:
    """One conversion and one conversion job per source track (inside ``creating_jobs``)."""
    created = []
    for tid in track_ids:
        conv = Conversion(
            user_id=jobs.user_id,
            voice_id=voice_id,
            source_track_id=tid,
            options=options.model_dump(mode="json"),
        )
        jobs.session.add(conv)
        jobs.session.flush()
        jobs.add(
            JobKind.conversion,
            ConversionParams(options=options, track_ids=[tid]),
            voice_id=voice_id,
            conversion_id=conv.id,
        )
        created.append(conv)
    jobs.answer(201, [conversion_public(jobs.session, c) for c in created])
    return created


@router.get("", response_model=list[ConversionPublic])
def list_conversions(
    user: CurrentUser, session: SessionDep, voice_id: str | None = None
) -> list[ConversionPublic]:
    return [
        conversion_public(session, c)
        for c in crud.list_conversions(session, user_id=user.id, voice_id=voice_id)
    ]


@router.get("/{conversion_id}", response_model=ConversionPublic)
def get_conversion(conversion_id: str, user: CurrentUser, session: SessionDep) -> ConversionPublic:
    conv = crud.get_conversion(session, user_id=user.id, conversion_id=conversion_id)
    if conv is None:
        raise not_found("Conversion")
    return conversion_public(session, conv)


@router.post(
    "/{conversion_id}/remix", response_model=JobPublic, status_code=status.HTTP_202_ACCEPTED
)
def remix_conversion(
    conversion_id: str,
    body: RemixRequest,
    request: Request,
    user: CurrentUser,
    session: SessionDep,
    settings: SettingsDep,
    idempotency_key: IdempotencyKeyHeader = None,
    webhook_url: WebhookUrlQuery = None,
) -> JobPublic:
    """Mix the stored converted vocals again with other settings (no re-conversion)."""
    conv = crud.get_conversion(session, user_id=user.id, conversion_id=conversion_id)
    if conv is None:
        raise not_found("Conversion")
    idem = idempotency_of(request, idempotency_key, body.model_dump(mode="json"), webhook_url)
    with creating_jobs(
        session, settings, user_id=user.id, idem=idem, webhook_url=webhook_url
    ) as jobs:
        ensure_not_busy(
            session,
            kind=JobKind.remix,
            conversion_id=conv.id,
            message="This conversion is in progress: wait for it or cancel it.",
        )
        if not crud.list_artifacts(
            session, user_id=user.id, conversion_id=conv.id, kind=ArtifactKind.converted_vocals
        ):
            raise HTTPException(
                409, "This conversion has no converted vocals yet: nothing to re-mix."
            )
        job = jobs.add(
            JobKind.remix,
            RemixParams(options=body),
            voice_id=conv.voice_id,
            conversion_id=conv.id,
        )
        jobs.answer(202, JobPublic.model_validate(job))
    return JobPublic.model_validate(job)


@router.delete("/{conversion_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_conversion(
    conversion_id: str, user: CurrentUser, session: SessionDep, storage: StorageDep
) -> None:
    conv = crud.get_conversion(session, user_id=user.id, conversion_id=conversion_id)
    if conv is None:
        raise not_found("Conversion")
    if crud.active_jobs_for(session, conversion_id=conv.id):
        raise HTTPException(409, "This conversion is in progress: cancel its job first.")
    prefixes = remove_conversion(session, conv)
    session.commit()
    for prefix in prefixes:
        storage.delete_prefix(prefix)
