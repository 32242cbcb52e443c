from __future__ import annotations

from typing import get_args

from fastapi import APIRouter, HTTPException, Request, status
from starlette.concurrency import run_in_threadpool

from app.api.deps import CurrentUser, SessionDep, SettingsDep, StorageDep, not_found
from app.api.routes.common import (
    BINARY,
    FILES,
    IdempotencyKeyHeader,
    WebhookUrlQuery,
    creating_jobs,
    ensure_not_busy,
    idempotency_of,
    multipart_body,
    preflight,
    receive_tracks,
    remove_conversion,
    upload_body,
    voice_public,
)
from app.api.schemas import (
    F0Method,
    IndexRequest,
    JobPublic,
    TrackPublic,
    TrainRequest,
    UploadResult,
    VoiceCreate,
    VoiceImportOptions,
    VoicePublic,
    VoiceUpdate,
)
from app.api.uploads import (
    move_into,
    parse_upload,
    sniff_npy,
    sniff_text,
    sniff_torch,
)
from app.core import keys
from app.core.db import crud
from app.core.db.models import TrackRole, TrackStatus
from app.core.names import ArtifactKind, JobKind
from app.core.params import VoiceImportParams
from svc_core import recipes

F0_METHODS = get_args(F0Method)

router = APIRouter(prefix="/voices", tags=["voices"])


@router.post("", response_model=VoicePublic, status_code=status.HTTP_201_CREATED)
def create_voice(body: VoiceCreate, user: CurrentUser, session: SessionDep) -> VoicePublic:
    voice = crud.create_voice(
        session, user_id=user.id, name=body.name, description=body.description
    )
    return voice_public(session, voice)


@router.post(
    "/import",
    response_model=UploadResult,
    status_code=status.HTTP_201_CREATED,
    openapi_extra=multipart_body(
        {
            "files": BINARY,
            "speaker": BINARY,
            "hparams": BINARY,
            # the fields of VoiceImportOptions (a component of the spec)
            **{
                k: {**v, "title": k}
                for k, v in VoiceImportOptions.model_json_schema()["properties"].items()
            },
        },
        ["files"],
    ),
)
async def import_voice(
    request: Request,
    user: CurrentUser,
    session: SessionDep,
    settings: SettingsDep,
    storage: StorageDep,
    idempotency_key: IdempotencyKeyHeader = None,
    webhook_url: WebhookUrlQuery = None,
) -> UploadResult:
    """Import a voice: an svc-studio voice package (``.zip``) in ``files``, or a singer's
    so-vits-svc 5.0 model (export, checkpoint or pretrain ``.pth``/``.pt``) in ``files`` with
    its speaker vector (``speaker0.spk.npy``) in ``speaker`` and, for files without
    ``hp_str``, its 5.0 config YAML in ``hparams``. The worker checks everything with the real
    loaders; a damaged or mismatching file fails the job with a plain message."""
    parsed = await parse_upload(
        request,
        storage,
        max_file_bytes=settings.max_voice_upload_bytes,
        max_files=1,
        accept=sniff_torch,
        accept_what="an svc-studio voice package (.zip) or a so-vits-svc 5.0 model file",
        extra_file_fields={
            "speaker": (sniff_npy, "a speaker vector (.npy)"),
            "hparams": (sniff_text, "a 5.0 config (YAML text)"),
        },
    )

    def finish() -> UploadResult:  # database work off the event loop (SQLite waits block)
        by_field = {f.field: f for f in parsed.files}
        up = by_field.get("files")
        if up is None:
            parsed.cleanup()
            raise HTTPException(
                400, "Send one voice package or 5.0 model file in the form field 'files'."
            )
        sovits5 = "speaker" in by_field
        if not sovits5 and not _is_voice_package(up.tmp_path):
            parsed.cleanup()
            raise HTTPException(
                400,
                f"'{up.filename}' is not a voice package: a so-vits-svc 5.0 model needs its "
                "speaker vector (.spk.npy) in the form field 'speaker'.",
            )
        if "hparams" in by_field and not sovits5:
            parsed.cleanup()
            raise HTTPException(400, "'hparams' belongs to a 5.0 model: send 'speaker' too.")
        f0 = (parsed.fields.get("f0_method") or "").strip()
        if f0 and f0 not in F0_METHODS:
            parsed.cleanup()
            raise HTTPException(400, f"Unknown F0 method '{f0[:40]}'.")
        name = (parsed.fields.get("name") or "").strip()[:200] or up.filename.rsplit(".", 2)[0]
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
            voice = crud.create_voice(session, user_id=user.id, name=name or "Imported voice")
            jobs.stored.append(keys.voice(user.id, voice.id))
            key = {
                field: keys.voice(user.id, voice.id, "import", stored_name)
                for field, stored_name in (
                    ("files", "model.pth" if sovits5 else "package.zip"),
                    ("speaker", "speaker.spk.npy"),
                    ("hparams", "hparams.yaml"),
                )
            }
            for field, up_file in by_field.items():
                move_into(storage, up_file, key[field])
            params = VoiceImportParams(
                filename=up.filename,
                sha256=up.sha256,
                storage_key=key["files"],
                format="sovits5" if sovits5 else "package",
                f0_method=(f0 or None) if sovits5 else None,  # type: ignore[arg-type]
                speaker_key=key["speaker"] if sovits5 else None,
                hparams_key=key["hparams"] if "hparams" in by_field else None,
            )
            job = jobs.add(JobKind.voice_import, params, voice_id=voice.id)
            jobs.answer(201, UploadResult(tracks=[], job=JobPublic.model_validate(job)))
        return UploadResult(tracks=[], job=JobPublic.model_validate(job))

    return await run_in_threadpool(finish)


def _is_voice_package(path) -> bool:
    """A zip holding voice.json (a torch.save file is a zip too, without it); only the zip's
    directory is read."""
    import zipfile

    try:
        with zipfile.ZipFile(path) as z:
            return "voice.json" in z.namelist()
    except (zipfile.BadZipFile, OSError):
        return False


@router.get("", response_model=list[VoicePublic])
def list_voices(user: CurrentUser, session: SessionDep) -> list[VoicePublic]:
    return [voice_public(session, v) for v in crud.list_voices(session, user_id=user.id)]


@router.get("/{voice_id}", response_model=VoicePublic)
def get_voice(voice_id: str, user: CurrentUser, session: SessionDep) -> VoicePublic:
    voice = crud.get_voice(session, user_id=user.id, voice_id=voice_id)
    if voice is None:
        raise not_found("Voice")
    return voice_public(session, voice)


@router.patch("/{voice_id}", response_model=VoicePublic)
def update_voice(
    voice_id: str, body: VoiceUpdate, user: CurrentUser, session: SessionDep
) -> VoicePublic:
    voice = crud.get_voice(session, user_id=user.id, voice_id=voice_id)
    if voice is None:
        raise not_found("Voice")
    for k, v in body.model_dump(exclude_none=True).items():
        setattr(voice, k, v)
    session.flush()
    return voice_public(session, voice)


@router.delete("/{voice_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_voice(
    voice_id: str, user: CurrentUser, session: SessionDep, storage: StorageDep
) -> None:
    voice = crud.get_voice(session, user_id=user.id, voice_id=voice_id)
    if voice is None:
        raise not_found("Voice")
    if crud.active_jobs_for(session, voice_id=voice.id):
        raise HTTPException(409, "This voice has a job in progress: cancel it first.")
    prefixes = [
        keys.track(user.id, t.id)
        for t in crud.list_tracks(session, user_id=user.id, voice_id=voice.id)
    ]
    prefixes.append(keys.voice(user.id, voice.id))
    for conv in crud.list_conversions(session, user_id=user.id, voice_id=voice.id):
        prefixes += remove_conversion(session, conv)
    session.delete(voice)
    session.commit()
    for p in prefixes:
        storage.delete_prefix(p)


@router.post(
    "/{voice_id}/tracks",
    response_model=UploadResult,
    status_code=status.HTTP_201_CREATED,
    openapi_extra=multipart_body({"files": FILES, "vocals_only": {"type": "boolean"}}, ["files"]),
)
async def upload_tracks(
    voice_id: str,
    request: Request,
    user: CurrentUser,
    session: SessionDep,
    settings: SettingsDep,
    storage: StorageDep,
    idempotency_key: IdempotencyKeyHeader = None,
    webhook_url: WebhookUrlQuery = None,
) -> UploadResult:
    """Upload one or more reference songs (streamed; sha256 on the way). Starts an ingest job.

    ``vocals_only=true`` marks the files as already-separated vocals: separation skips them.
    """
    voice = await run_in_threadpool(crud.get_voice, session, user_id=user.id, voice_id=voice_id)
    if voice is None:
        raise not_found("Voice")
    # end the read before the upload streams in: no connection is held while the bytes arrive
    await run_in_threadpool(session.commit)
    return await receive_tracks(
        request,
        session,
        settings,
        storage,
        user_id=user.id,
        role=TrackRole.reference,
        voice_id=voice.id,
        idempotency_key=idempotency_key,
        webhook_url=webhook_url,
    )


@router.get("/{voice_id}/tracks", response_model=list[TrackPublic])
def list_voice_tracks(voice_id: str, user: CurrentUser, session: SessionDep) -> list[TrackPublic]:
    if crud.get_voice(session, user_id=user.id, voice_id=voice_id) is None:
        raise not_found("Voice")
    return [
        TrackPublic.model_validate(t)
        for t in crud.list_tracks(session, user_id=user.id, voice_id=voice_id)
    ]


def _usable_tracks(session, user_id: str, voice_id: str, missing: str) -> list:
    """The voice's reference tracks that did not fail to decode; 400 ``missing`` if none."""
    tracks = crud.list_tracks(session, user_id=user_id, voice_id=voice_id)
    usable = [t for t in tracks if t.status != TrackStatus.failed]
    if not usable:
        raise HTTPException(400, missing)
    return usable


@router.post("/{voice_id}/train", response_model=JobPublic, status_code=status.HTTP_202_ACCEPTED)
def train_voice(
    voice_id: str,
    body: TrainRequest,
    request: Request,
    user: CurrentUser,
    session: SessionDep,
    settings: SettingsDep,
    idempotency_key: IdempotencyKeyHeader = None,
    webhook_url: WebhookUrlQuery = None,
) -> JobPublic:
    """Start the voice pipeline: ingest → separate → slice → preprocess → train."""
    voice = crud.get_voice(session, user_id=user.id, voice_id=voice_id)
    if voice is None:
        raise not_found("Voice")
    idem = idempotency_of(request, idempotency_key, body.model_dump(mode="json"), webhook_url)
    with creating_jobs(
        session, settings, user_id=user.id, idem=idem, webhook_url=webhook_url
    ) as jobs:
        usable = _usable_tracks(
            session, user.id, voice.id, "Upload at least one usable reference track first."
        )
        preflight(
            settings,
            "This training",
            lambda models: recipes.missing_for_training(
                models,
                config=body.config,
                f0_method=body.f0_method,
                ppg_model=body.ppg_model,
                vec_model=body.vec_model,
                base_model=body.base_model,
                speaker_encoder=body.speaker_encoder,
                separation_model=body.separation_model,
                dereverb=body.dereverb,
                separate=any(not t.vocals_only for t in usable),
            ),
        )
        ensure_not_busy(
            session,
            kind=JobKind.voice,
            voice_id=voice.id,
            message="This voice is already training or building its index: cancel that job first.",
        )
        voice.settings = {**voice.settings, "train": body.model_dump(mode="json")}
        job = jobs.add(JobKind.voice, body, voice_id=voice.id)
        jobs.answer(202, JobPublic.model_validate(job))
    return JobPublic.model_validate(job)


@router.post("/{voice_id}/index", response_model=JobPublic, status_code=status.HTTP_202_ACCEPTED)
def build_voice_index(
    voice_id: str,
    body: IndexRequest,
    request: Request,
    user: CurrentUser,
    session: SessionDep,
    settings: SettingsDep,
    idempotency_key: IdempotencyKeyHeader = None,
    webhook_url: WebhookUrlQuery = None,
) -> JobPublic:
    """(Re)build the voice's retrieval index from its reference songs: ingest → separate →
    slice → index. For a voice that came without one (an import of a package or of
    so-vits-svc 5.0 files), or to index songs added since training. The voice's own content
    encoders are used; its model, speaker vector and settings are not changed. An imported
    voice without a pitch range gets these songs' range."""
    voice = crud.get_voice(session, user_id=user.id, voice_id=voice_id)
    if voice is None:
        raise not_found("Voice")
    idem = idempotency_of(request, idempotency_key, body.model_dump(mode="json"), webhook_url)
    with creating_jobs(
        session, settings, user_id=user.id, idem=idem, webhook_url=webhook_url
    ) as jobs:
        features = (voice.settings or {}).get("features")
        has_model = bool(
            crud.list_artifacts(
                session, user_id=user.id, voice_id=voice.id, kind=ArtifactKind.voice_package
            )
        )
        if not features or not has_model:
            raise HTTPException(
                400, "This voice has no model yet: train or import it before building its index."
            )
        usable = _usable_tracks(
            session,
            user.id,
            voice.id,
            "Upload at least one usable song of this singer first: the index is built from "
            "its songs.",
        )
        preflight(
            settings,
            "This index build",
            lambda models: recipes.missing_for_conversion(
                models,
                features,
                separation_model=body.separation_model,
                separate=any(not t.vocals_only for t in usable),
                dereverb=body.dereverb,
            ),
        )
        ensure_not_busy(
            session,
            kind=JobKind.voice_index,
            voice_id=voice.id,
            message="This voice is already training or building its index: cancel that job first.",
        )
        job = jobs.add(JobKind.voice_index, body, voice_id=voice.id)
        jobs.answer(202, JobPublic.model_validate(job))
    return JobPublic.model_validate(job)
