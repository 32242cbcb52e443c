"""Helpers the stage functions share: job snapshots, artifact records, inputs keys."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from sqlalchemy import select

from app.core import keys
from app.core.db import crud
from app.core.db.models import Artifact, Conversion, Job, Track, TrackStatus, Voice
from app.core.names import ArtifactKind, JobKind, Stage
from app.core.params import ConversionOptions, ConversionParams, IngestParams, parse_params
from svc_core.errors import BadInputError, StageNotAvailableError
from svc_core.recipes import Features
from svc_core.utils import resolve_device
from worker.jobs.runtime import JobHandle, Runtime


@dataclass(frozen=True)
class JobSnapshot:
    id: str
    user_id: str
    kind: JobKind
    params: Any  # the kind's model from app.core.params (TrainRequest, ConversionParams, …)
    voice_id: str | None
    conversion_id: str | None


def snapshot(rt: Runtime, h: JobHandle) -> JobSnapshot:
    """The job as its stage functions read it, with its parameters parsed by the same model
    the API validated them with."""
    with rt.scope() as s:
        job = s.get(Job, h.job_id)
        assert job is not None
        try:
            params = parse_params(job.kind, job.params)
        except ValidationError as exc:
            raise BadInputError(
                f"This {job.kind} job's settings are not valid for this worker's version of "
                f"svc-studio (update the worker, or start the job again): {plain(exc)}"
            ) from exc
        except ValueError as exc:  # a kind of job a newer API knows
            raise StageNotAvailableError(
                f"This worker's version of svc-studio does not know '{job.kind}' jobs: "
                "update the worker."
            ) from exc
        return JobSnapshot(
            id=job.id,
            user_id=job.user_id,
            kind=JobKind(job.kind),
            params=params,
            voice_id=job.voice_id,
            conversion_id=job.conversion_id,
        )


def plain(exc: ValidationError) -> str:
    """A validation error in words: ``options output format: Input should be 'wav16', …``."""
    return "; ".join(
        " ".join(str(p) for p in e["loc"]).replace("_", " ") + f": {e['msg']}" for e in exc.errors()
    )


def worker_device() -> str:
    """The torch device this worker runs the engine on: its GPU when it has one."""
    return resolve_device("auto")


def worker_cuda() -> bool:
    """Whether this worker runs on a GPU (the device-dependent defaults follow)."""
    return worker_device() != "cpu"


def inputs_key(*parts: Any) -> str:
    """A stable hash of a stage's inputs and parameters (artifact reuse key)."""
    blob = json.dumps(parts, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()


def store_artifact(
    rt: Runtime,
    *,
    job: JobSnapshot,
    local_file: Path,
    key: str,
    kind: ArtifactKind,
    stage: Stage,
    inputs: str | None,
    content_type: str,
    filename: str,
    meta: dict[str, Any] | None = None,
    track_id: str | None = None,
    voice_id: str | None = None,
    conversion_id: str | None = None,
    move: bool = True,
) -> Artifact:
    """Put a finished local file into storage (atomic) and record it."""
    stored = rt.storage.put_file(key, local_file, move=move)
    with rt.scope() as s:
        art = Artifact(
            user_id=job.user_id,
            kind=kind,
            storage_key=stored.key,
            sha256=stored.sha256,
            size_bytes=stored.size,
            content_type=content_type,
            filename=filename,
            meta=meta,
            job_id=job.id,
            stage=stage,
            inputs_key=inputs,
            track_id=track_id,
            voice_id=voice_id,
            conversion_id=conversion_id,
        )
        s.add(art)
        s.flush()
        s.expunge(art)
    return art


def find_artifact(
    rt: Runtime,
    *,
    user_id: str,
    kind: ArtifactKind,
    track_id: str | None = None,
    voice_id: str | None = None,
    conversion_id: str | None = None,
    inputs: str | None = None,
) -> Artifact | None:
    """The newest artifact of ``kind`` for the given owner/track/voice/conversion whose file
    is still in storage (``inputs``: only one made from the same inputs and parameters)."""
    with rt.scope() as s:
        for art in crud.list_artifacts(
            s,
            user_id=user_id,
            kind=kind,
            track_id=track_id,
            voice_id=voice_id,
            conversion_id=conversion_id,
            inputs_key=inputs,
            newest_first=True,
        ):
            if rt.storage.exists(art.storage_key):
                s.expunge(art)
                return art
    return None


def job_track_ids(rt: Runtime, job: JobSnapshot) -> list[str]:
    """The tracks a job works on: its explicit list, else the voice's reference tracks or the
    conversion's source track."""
    if isinstance(job.params, IngestParams | ConversionParams):
        return list(job.params.track_ids)
    with rt.scope() as s:
        if job.kind in (JobKind.voice, JobKind.voice_index) and job.voice_id:
            q = (
                select(Track.id)
                .where(Track.voice_id == job.voice_id, Track.user_id == job.user_id)
                .order_by(Track.created_at)
            )
            return list(s.scalars(q))
        if job.conversion_id:
            conv = s.get(Conversion, job.conversion_id)
            return [conv.source_track_id] if conv else []
    return []


def usable_tracks(rt: Runtime, job: JobSnapshot) -> list[Track]:
    """The job's tracks that ingest decoded (failed ones were reported by ingest)."""
    out = []
    with rt.scope() as s:
        for tid in job_track_ids(rt, job):
            track = s.get(Track, tid)
            if track is not None and track.user_id == job.user_id:
                if track.status == TrackStatus.ready:
                    s.expunge(track)
                    out.append(track)
    return out


def voice_of(job: JobSnapshot) -> str:
    if not job.voice_id:
        raise BadInputError(f"This {job.kind} job has no voice.")
    return job.voice_id


def safe_stem(name: str) -> str:
    """A voice's name as the stem of the file names it is downloaded under."""
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in name)[:60] or "voice"


def temp_dir(rt: Runtime) -> Path:
    """A fresh folder on the storage file system (so results can be renamed into place)."""
    path = rt.storage.temp_path()
    path.mkdir(parents=True)
    return path


@dataclass(frozen=True)
class ConversionContext:
    """What the conversion stages read of a conversion, its voice and its source track."""

    id: str
    voice_id: str
    voice_name: str
    track_id: str
    song: str  # the source track's file name
    options: ConversionOptions
    report: dict[str, Any]
    features: Features | None  # the voice's F0 method and content encoders (None: untrained)
    coverage: dict[str, Any]  # the voice's coverage report


def conversion_context(rt: Runtime, job: JobSnapshot) -> ConversionContext:
    with rt.scope() as s:
        conv = s.get(Conversion, job.conversion_id) if job.conversion_id else None
        if conv is None or conv.user_id != job.user_id:
            raise BadInputError("This job has no conversion.")
        voice = s.get(Voice, conv.voice_id)
        track = s.get(Track, conv.source_track_id)
        if voice is None or track is None:
            raise BadInputError("The conversion's voice or song was deleted.")
        feats = (voice.settings or {}).get("features")
        return ConversionContext(
            id=conv.id,
            voice_id=voice.id,
            voice_name=voice.name,
            track_id=track.id,
            song=track.filename,
            options=ConversionOptions.model_validate(conv.options or {}),
            report=dict(conv.report or {}),
            features=Features.from_dict(feats) if feats else None,
            coverage=dict(voice.report or {}),
        )


def store_retrieval_index(
    rt: Runtime, *, job: JobSnapshot, local_file: Path, index, tag: str, stage: Stage, filename: str
) -> Artifact:
    """A voice's retrieval index file (``index``: the loaded VoiceIndex, for its metadata)
    as its ``retrieval_index`` artifact; the local file is copied, not moved."""
    voice_id = voice_of(job)
    return store_artifact(
        rt,
        job=job,
        local_file=local_file,
        key=keys.voice(job.user_id, voice_id, f"retrieval-{tag}.svcindex"),
        kind=ArtifactKind.retrieval_index,
        stage=stage,
        inputs=None,
        content_type="application/zip",
        filename=filename,
        meta={**index.info, "dims": index.dims()},
        voice_id=voice_id,
        move=False,
    )
