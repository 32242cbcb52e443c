"""The models page's API: the registry of pretrained models (svc_core.assets) with their
state in the models folder, downloads as worker jobs (progress, cancel), and imports of a
file obtained elsewhere, checked as ``svc-studio assets import`` checks it.

The models folder is the server's SVC_MODELS_DIR; the workers use theirs (the same folder on
one machine, a shared volume on several)."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, HTTPException, Query, Request, status
from starlette.concurrency import run_in_threadpool

from app.api.deps import CurrentUser, SessionDep, SettingsDep, StorageDep
from app.api.routes.common import (
    IdempotencyKeyHeader,
    WebhookUrlQuery,
    creating_jobs,
    idempotency_of,
)
from app.api.schemas import (
    JobPublic,
    ModelDownloadRequest,
    ModelPublic,
    ModelsPublic,
    PresetPublic,
)
from app.api.uploads import parse_upload
from app.core.config import Settings
from app.core.names import JobKind
from app.core.params import ModelDownloadParams

router = APIRouter(prefix="/models", tags=["models"])

PRESET_WORDS = {"sovits5": "so-vits-svc 5.0's set: its pretrain, content and speaker encoders"}
# an import larger than the published size (or than this where none is published) is refused
MAX_IMPORT_BYTES = 8 << 30


def _model(settings: Settings, asset, verify: bool) -> ModelPublic:
    from svc_core import assets

    state, detail = (assets.check if verify else assets.quick_check)(asset, settings.models_dir)
    path = Path(settings.models_dir) / asset.filename
    return ModelPublic(
        name=asset.name,
        kind=str(asset.kind),
        description=asset.description,
        filename=asset.filename,
        size=asset.size,
        installed_size=path.stat().st_size if path.is_file() else None,
        licence=asset.licence,
        requires=list(asset.requires),
        state=state,  # type: ignore[arg-type]
        detail=detail,
        installed=state in ("ok", "recorded", "unverified"),
    )


def _listing(settings: Settings, verify: bool) -> ModelsPublic:
    from svc_core import assets

    models = [_model(settings, a, verify) for a in assets.list_assets()]
    by_name = {m.name: m for m in models}
    presets = []
    for name, names in assets.PRESETS.items():
        presets.append(
            PresetPublic(
                name=name,
                description=PRESET_WORDS.get(name, name),
                models=list(names),
                missing=[n for n in names if not by_name[n].installed],
                note=assets.PRESET_NOTES.get(name),
            )
        )
    return ModelsPublic(
        models_dir=str(settings.models_dir),
        mirror=settings.models_mirror or None,
        models=models,
        presets=presets,
    )


@router.get("", response_model=ModelsPublic)
async def list_models(
    settings: SettingsDep,
    user: CurrentUser,
    verify: bool = Query(
        default=False,
        description="Hash every installed file (slow for large files; memoised per file)",
    ),
) -> ModelsPublic:
    """Every model the studio knows, whether it is installed, and the presets."""
    return await run_in_threadpool(_listing, settings, verify)


@router.post("/download", response_model=JobPublic, status_code=status.HTTP_202_ACCEPTED)
def download_models(
    body: ModelDownloadRequest,
    request: Request,
    user: CurrentUser,
    session: SessionDep,
    settings: SettingsDep,
    idempotency_key: IdempotencyKeyHeader = None,
    webhook_url: WebhookUrlQuery = None,
) -> JobPublic:
    """Download models (by name, or a preset's) on a worker: a job with progress that can be
    cancelled; each file is checked against its published hash before it is installed."""
    from svc_core import assets
    from svc_core.errors import AssetMissingError

    try:
        names = [assets.get_asset(n).name for n in body.names]
        if body.preset:
            names += [a.name for a in assets.preset_assets(body.preset)]
    except AssetMissingError as exc:
        raise HTTPException(400, str(exc)) from exc
    names = list(dict.fromkeys(names))
    if not names:
        raise HTTPException(400, "Name the models to download (names) or a preset.")
    idem = idempotency_of(request, idempotency_key, body.model_dump(mode="json"), webhook_url)
    with creating_jobs(
        session, settings, user_id=user.id, idem=idem, webhook_url=webhook_url
    ) as jobs:
        job = jobs.add(JobKind.model_download, ModelDownloadParams(names=names))
        jobs.answer(202, JobPublic.model_validate(job))
    return JobPublic.model_validate(job)


@router.post("/{name}/import", response_model=ModelPublic)
async def import_model(
    name: str,
    request: Request,
    user: CurrentUser,
    settings: SettingsDep,
    storage: StorageDep,
) -> ModelPublic:
    """Install a model file obtained elsewhere (a machine without a network): multipart
    field ``file``. It is checked against the published hash (or size) and recorded; a file
    that does not match is refused (400) and nothing is installed."""
    from svc_core import assets
    from svc_core.errors import AssetMissingError, SvcError

    try:
        asset = assets.get_asset(name)
    except AssetMissingError as exc:
        raise HTTPException(404, str(exc)) from exc
    limit = asset.size + 1 if asset.size else MAX_IMPORT_BYTES
    parsed = await parse_upload(
        request,
        storage,
        max_file_bytes=limit,
        max_files=1,
        file_field="file",
        accept=lambda head: True,
        accept_what=f"the file {asset.filename}",
    )
    try:
        if not parsed.files:
            raise HTTPException(400, f"Send the model file in the form field 'file' ({name}).")
        up = parsed.files[0]
        try:
            await run_in_threadpool(assets.import_file, name, up.tmp_path, settings.models_dir)
        except SvcError as exc:  # AssetHashError included: not the published file
            raise HTTPException(400, str(exc)) from exc
    finally:
        parsed.cleanup()
    return await run_in_threadpool(_model, settings, asset, False)
