from __future__ import annotations

from fastapi import APIRouter, HTTPException
from fastapi.responses import FileResponse

from app.api.deps import CurrentUser, SessionDep, StorageDep, not_found
from app.api.routes.common import BINARY_BODY, artifact_public
from app.api.schemas import ArtifactPublic
from app.core.db import crud

router = APIRouter(prefix="/artifacts", tags=["artifacts"])


@router.get("/{artifact_id}", response_model=ArtifactPublic)
def get_artifact(artifact_id: str, user: CurrentUser, session: SessionDep) -> ArtifactPublic:
    art = crud.get_artifact(session, user_id=user.id, artifact_id=artifact_id)
    if art is None:
        raise not_found("Artifact")
    return artifact_public(art)


@router.get(
    "/{artifact_id}/download",
    response_class=FileResponse,
    responses={
        200: {"description": "The file", "content": BINARY_BODY},
        206: {"description": "Partial content (HTTP Range)", "content": BINARY_BODY},
        404: {"description": "No such artifact (or another user's)"},
        410: {"description": "The file is no longer in storage"},
    },
)
def download_artifact(
    artifact_id: str,
    user: CurrentUser,
    session: SessionDep,
    storage: StorageDep,
    inline: bool = False,
) -> FileResponse:
    """The artifact's bytes. Supports HTTP Range, so audio players can seek."""
    art = crud.get_artifact(session, user_id=user.id, artifact_id=artifact_id)
    if art is None:
        raise not_found("Artifact")
    path = storage.path(art.storage_key)
    if not path.is_file():
        raise HTTPException(410, "The file is no longer in storage.")
    return FileResponse(
        path,
        media_type=art.content_type,
        filename=art.filename or art.kind,
        content_disposition_type="inline" if inline else "attachment",
    )
