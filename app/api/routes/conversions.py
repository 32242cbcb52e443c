from __future__ import annotations

import json

from fastapi import APIRouter, HTTPException, Request, status
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from app.api.deps import CurrentUser, SessionDep, SettingsDep, StorageDep, not_found
from app.api.routes.common import (
    FILES,
    add_uploaded_track,
    conversion_public,
    creating_jobs,
    ensure_not_busy,
    multipart_body,
)
from app.api.schemas import ConversionOptions, ConversionPublic, JobPublic, RemixRequest
from app.api.uploads import form_flag, parse_upload
from app.core import keys
from app.core.db import crud
from app.core.db.models import Conversion, TrackRole
from app.core.names import ArtifactKind, JobKind
from app.core.params import ConversionParams, RemixParams

router = APIRouter(prefix="/conversions", tags=["conversions"])


@router.post(
    "",
    response_model=list[ConversionPublic],
    status_code=status.HTTP_201_CREATED,
    openapi_extra=multipart_body(
        {
            "voice_id": {"type": "string"},
            "options": {"type": "string", "description": "ConversionOptions as JSON"},
            "vocals_only": {"type": "boolean"},
            "files": FILES,
        },
        ["voice_id", "files"],
    ),
)
async def create_conversions(
    request: Request,
    user: CurrentUser,
    session: SessionDep,
    settings: SettingsDep,
    storage: StorageDep,
) -> list[ConversionPublic]:
    """Upload one or more source songs and convert each into the voice: one conversion and one
    job (ingest → separate → convert → mix → report) per song."""
    parsed = await parse_upload(
        request,
        storage,
        max_file_bytes=settings.max_upload_bytes,
        max_files=settings.max_files_per_upload,
    )

    def finish() -> list[ConversionPublic]:  # DB work off the event loop (SQLite waits)
        try:
            voice = crud.get_voice(
                session, user_id=user.id, voice_id=parsed.fields.get("voice_id", "")
            )
            if voice is None:
                raise not_found("Voice")
            try:
                options = ConversionOptions.model_validate(
                    json.loads(parsed.fields.get("options") or "{}")
                )
            except (ValueError, ValidationError) as exc:
                raise HTTPException(422, f"Invalid conversion options: {exc}") from exc
            if not parsed.files:
                raise HTTPException(400, "No files in the upload (use the form field 'files').")
            if options.mix_voice_id and not crud.get_voice(
                session, user_id=user.id, voice_id=options.mix_voice_id
            ):
                raise not_found("Voice to mix with")
        except BaseException:
            parsed.cleanup()
            raise
        vocals_only = form_flag(parsed.fields, "vocals_only")
        created: list[Conversion] = []
        with creating_jobs(
            session, settings, user_id=user.id, storage=storage, upload=parsed
        ) as jobs:
            for up in parsed.files:
                track = add_uploaded_track(
                    session,
                    storage,
                    up,
                    user_id=user.id,
                    role=TrackRole.source,
                    voice_id=None,
                    vocals_only=vocals_only,
                )
                jobs.stored.append(keys.track(user.id, track.id))
                conv = Conversion(
                    user_id=user.id,
                    voice_id=voice.id,
                    source_track_id=track.id,
                    options=options.model_dump(mode="json"),
                )
                session.add(conv)
                session.flush()
                jobs.add(
                    JobKind.conversion,
                    ConversionParams(options=options, track_ids=[track.id]),
                    voice_id=voice.id,
                    conversion_id=conv.id,
                )
                created.append(conv)
        return [conversion_public(session, c) for c in created]

    return await run_in_threadpool(finish)


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
    user: CurrentUser,
    session: SessionDep,
    settings: SettingsDep,
) -> JobPublic:
    """Mix the stored converted vocals again with other settings (no re-conversion)."""
    conv = crud.get_conversion(session, user_id=user.id, conversion_id=conversion_id)
    if conv is None:
        raise not_found("Conversion")
    ensure_not_busy(
        session,
        kind=JobKind.remix,
        conversion_id=conv.id,
        message="This conversion is in progress: wait for it or cancel it.",
    )
    if not crud.list_artifacts(
        session, user_id=user.id, conversion_id=conv.id, kind=ArtifactKind.converted_vocals
    ):
        raise HTTPException(409, "This conversion has no converted vocals yet: nothing to re-mix.")
    with creating_jobs(session, settings, user_id=user.id) as jobs:
        job = jobs.add(
            JobKind.remix,
            RemixParams(options=body),
            voice_id=conv.voice_id,
            conversion_id=conv.id,
        )
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
    track = crud.get_track(session, user_id=user.id, track_id=conv.source_track_id)
    session.delete(conv)
    if track is not None:
        session.delete(track)
    session.commit()
    storage.delete_prefix(keys.conversion(user.id, conv.id))
    storage.delete_prefix(keys.track(user.id, conv.source_track_id))
