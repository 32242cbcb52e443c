"""Ingest stage: decode each uploaded track to a 44.1 kHz float WAV and record its metadata.

Tracks already ingested with the same parameters are skipped, so a job that resumes after a
worker died continues with the next track instead of starting over.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from app.core import keys
from app.core.db.models import Artifact, Track, TrackStatus, utcnow
from app.core.names import ArtifactKind, JobKind, Stage
from svc_core.errors import BadInputError, Cancelled
from svc_core.progress import check_stop
from worker.jobs.common import inputs_key, job_track_ids, snapshot, store_artifact
from worker.jobs.runtime import JobHandle, Runtime


def run(rt: Runtime, h: JobHandle) -> None:
    from svc_core.ingest import IngestParams, ingest_file

    job = snapshot(rt, h)
    params = IngestParams(
        max_duration_s=rt.settings.max_audio_seconds, min_duration_s=rt.settings.min_audio_seconds
    )
    ids = job_track_ids(rt, job)
    if not ids:
        raise BadInputError("There are no tracks to process: upload audio files first.")
    failures: list[str] = []
    n = len(ids)
    for i, track_id in enumerate(ids):
        check_stop(h.should_stop)
        with rt.scope() as s:
            track = s.get(Track, track_id)
            if track is None or track.user_id != job.user_id:
                continue
            s.expunge(track)
        key = inputs_key("ingest", track.sha256, params)
        if track.status == TrackStatus.failed and job.kind != JobKind.ingest:
            failures.append(track.error or f"{track.filename}: could not be decoded")
            continue
        if track.status == TrackStatus.ready and _has_decoded(rt, track.id, key):
            h.progress("ingest", (i + 1) / n, f"ingest: {track.filename} already decoded")
            continue
        h.progress("ingest", i / n, f"ingest: decoding {track.filename} ({i + 1}/{n})", force=True)
        tmp = rt.storage.temp_path(".wav")

        def sub(_stage: str, f: float, _i: int = i) -> None:
            h.progress("ingest", (_i + f) / n)

        try:
            result = ingest_file(
                rt.storage.path(track.storage_key),
                tmp,
                params,
                progress=sub,
                should_stop=h.should_stop,
                display_name=track.filename,  # messages name the upload, not our copy
            )
        except Cancelled:
            tmp.unlink(missing_ok=True)
            raise
        except BadInputError as exc:
            tmp.unlink(missing_ok=True)
            _mark(rt, track.id, status=TrackStatus.failed, error=str(exc))
            failures.append(str(exc))  # the message names the file
            continue
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        store_artifact(
            rt,
            job=job,
            local_file=Path(tmp),
            key=_decoded_key(track),
            kind=ArtifactKind.decoded,
            stage=Stage.ingest,
            inputs=key,
            content_type="audio/wav",
            filename=f"{Path(track.filename).stem}.wav",
            meta=result.to_dict(),
            track_id=track.id,
            voice_id=track.voice_id,
        )
        _mark(rt, track.id, status=TrackStatus.ready, meta=result.to_dict())
        h.progress("ingest", (i + 1) / n, f"ingest: {track.filename} done", force=True)

    if failures:
        ok = n - len(failures)
        summary = "; ".join(failures)
        if job.kind in (JobKind.voice, JobKind.voice_index) and ok > 0:
            h.save_state(ingest_warnings=failures)  # train on the usable tracks
            return
        raise BadInputError(f"{ok} of {n} file(s) could be used. {summary}" if n > 1 else summary)


def _decoded_key(track: Track) -> str:
    return keys.track(track.user_id, track.id, "decoded.wav")


def _has_decoded(rt: Runtime, track_id: str, key: str) -> bool:
    with rt.scope() as s:
        art = s.scalar(
            select(Artifact).where(
                Artifact.track_id == track_id,
                Artifact.kind == ArtifactKind.decoded,
                Artifact.inputs_key == key,
            )
        )
        return art is not None and rt.storage.exists(art.storage_key)


def _mark(
    rt: Runtime,
    track_id: str,
    *,
    status: TrackStatus,
    error: str | None = None,
    meta: dict | None = None,
) -> None:
    with rt.scope() as s:
        track = s.get(Track, track_id)
        if track is None:
            return
        track.status = status
        track.error = error
        if meta is not None:
            track.meta = meta
            track.ingested_at = utcnow()
