from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, HTTPException, Request, status
from fastapi.responses import FileResponse

from app.api.deps import CurrentUser, SessionDep, SettingsDep, StorageDep, not_found
from app.api.routes.common import (
    BINARY_BODY,
    FILES,
    IdempotencyKeyHeader,
    WebhookUrlQuery,
    multipart_body,
    receive_tracks,
)
from app.api.schemas import TrackPublic, UploadResult
from app.core import keys
from app.core.db import crud
from app.core.db.models import TrackRole
from app.core.names import ArtifactKind

router = APIRouter(prefix="/tracks", tags=["tracks"])


@router.get("", response_model=list[TrackPublic])
def list_tracks(
    user: CurrentUser, session: SessionDep, role: TrackRole | None = None
) -> list[TrackPublic]:
    return [
        TrackPublic.model_validate(t) for t in crud.list_tracks(session, user_id=user.id, role=role)
    ]


@router.post(
    "",
    response_model=UploadResult,
    status_code=status.HTTP_201_CREATED,
    openapi_extra=multipart_body({"files": FILES, "vocals_only": {"type": "boolean"}}, ["files"]),
)
async def upload_source_tracks(
    request: Request,
    user: CurrentUser,
    session: SessionDep,
    settings: SettingsDep,
    storage: StorageDep,
    idempotency_key: IdempotencyKeyHeader = None,
    webhook_url: WebhookUrlQuery = None,
) -> UploadResult:
    """Upload source songs to convert later by id (``POST /conversions`` with JSON), into
    as many voices as wanted. Starts an ingest job; the songs stay until deleted."""
    return await receive_tracks(
        request,
        session,
        settings,
        storage,
        user_id=user.id,
        role=TrackRole.source,
        voice_id=None,
        idempotency_key=idempotency_key,
        webhook_url=webhook_url,
    )


@router.get("/{track_id}", response_model=TrackPublic)
def get_track(track_id: str, user: CurrentUser, session: SessionDep) -> TrackPublic:
    track = crud.get_track(session, user_id=user.id, track_id=track_id)
    if track is None:
        raise not_found("Track")
    return TrackPublic.model_validate(track)


@router.delete("/{track_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_track(
    track_id: str, user: CurrentUser, session: SessionDep, storage: StorageDep
) -> None:
    track = crud.get_track(session, user_id=user.id, track_id=track_id)
    if track is None:
        raise not_found("Track")
    if uses := crud.conversions_of_track(session, track_id=track.id):
        raise HTTPException(
            409, f"This song is the source of {len(uses)} conversion(s): delete them first."
        )
    if track.voice_id and crud.active_jobs_for(session, voice_id=track.voice_id):
        raise HTTPException(409, "The voice has a job in progress: cancel it first.")
    session.delete(track)
    session.commit()
    storage.delete_prefix(keys.track(user.id, track.id))


@router.get(
    "/{track_id}/audio",
    response_class=FileResponse,
    responses={
        200: {"description": "The audio (its type in Content-Type)", "content": BINARY_BODY},
        206: {"description": "Partial content (HTTP Range)", "content": BINARY_BODY},
    },
)
def track_audio(
    track_id: str,
    user: CurrentUser,
    session: SessionDep,
    storage: StorageDep,
    variant: Literal["original", "decoded"] = "original",
) -> FileResponse:
    """The uploaded file as it was, or the decoded 44.1 kHz WAV. Supports HTTP Range."""
    track = crud.get_track(session, user_id=user.id, track_id=track_id)
    if track is None:
        raise not_found("Track")
    if variant == "original":
        # the uploader's Content-Type is not trusted: only an audio type is passed on
        media = track.content_type if track.content_type.startswith("audio/") else None
        key, media, name = track.storage_key, media or "application/octet-stream", track.filename
    else:
        arts = crud.list_artifacts(
            session, user_id=user.id, track_id=track.id, kind=ArtifactKind.decoded
        )
        if not arts:
            raise HTTPException(409, "This track has not been decoded yet.")
        key, media, name = arts[-1].storage_key, "audio/wav", arts[-1].filename
    path = storage.path(key)
    if not path.is_file():
        raise HTTPException(410, "The file is no longer in storage.")
    # an audio element plays either way; anything not audio is only ever downloaded
    disposition = "inline" if media.startswith("audio/") else "attachment"
    return FileResponse(path, media_type=media, filename=name, content_disposition_type=disposition)
