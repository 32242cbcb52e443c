"""Separate stage: each decoded track → vocals + instrumental stems (audio-separator).

Tracks uploaded as vocals-only skip the separation model (their vocals are the decoded
audio, optionally cleaned by a second pass). Stems made from the same decoded audio with the
same settings are reused, so a resumed job continues with the next track.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from app.core import keys
from app.core.names import ArtifactKind, Stage
from app.core.params import ConversionParams
from svc_core import recipes
from svc_core.errors import BadInputError
from svc_core.progress import check_stop
from worker.jobs.common import (
    JobSnapshot,
    find_artifact,
    inputs_key,
    snapshot,
    store_artifact,
    temp_dir,
    usable_tracks,
    worker_cuda,
)
from worker.jobs.runtime import JobHandle, Runtime


def separation_params(job: JobSnapshot, *, vocals_only: bool, max_duration_s: float):
    """The job's separation settings for this worker's device: a voice's training request
    may ask for a model and dereverb, a conversion's options for a model."""
    p = job.params
    request = p.options if isinstance(p, ConversionParams) else p
    return recipes.separation_params(
        request.separation_model,
        cuda=worker_cuda(),
        dereverb=getattr(request, "dereverb", False),
        vocals_only=vocals_only,
        max_duration_s=max_duration_s,
    )


def run(rt: Runtime, h: JobHandle) -> None:
    from svc_core.separation import separate

    job = snapshot(rt, h)
    tracks = usable_tracks(rt, job)
    if not tracks:
        raise BadInputError("No decoded tracks to separate: every upload failed to decode.")
    n = len(tracks)
    for i, track in enumerate(tracks):
        check_stop(h.should_stop)
        decoded = find_artifact(
            rt, user_id=job.user_id, kind=ArtifactKind.decoded, track_id=track.id
        )
        if decoded is None:
            raise BadInputError(f"'{track.filename}' has not been decoded: upload it again.")
        params = separation_params(
            job, vocals_only=track.vocals_only, max_duration_s=rt.settings.max_audio_seconds
        )
        key = inputs_key("separate", decoded.sha256, params)
        if find_artifact(
            rt, user_id=job.user_id, kind=ArtifactKind.vocals, track_id=track.id, inputs=key
        ):
            h.progress("separate", (i + 1) / n, f"separate: {track.filename} already done")
            continue
        what = "cleaning vocals of" if track.vocals_only else "separating"
        h.progress(
            "separate", i / n, f"separate: {what} {track.filename} ({i + 1}/{n})", force=True
        )
        work = temp_dir(rt)
        try:
            result = separate(
                rt.storage.path(decoded.storage_key),
                work,
                params,
                rt.settings.models_dir,
                progress=h.sub_progress("separate", i / n, (i + 1) / n),
                should_stop=h.should_stop,
            )

            meta = {
                "model": result.model,
                "second_pass": result.second_pass,
                "sample_rate": result.sample_rate,
                "frames": result.frames,
            }
            stem = Path(track.filename).stem
            # instrumental first: "vocals" with this key marks the track as done
            stems = [
                (ArtifactKind.instrumental, result.instrumental),
                *((ArtifactKind(k), v) for k, v in result.extra.items()),
                (ArtifactKind.vocals, result.vocals),
            ]
            for kind, path in stems:
                if path is None:
                    continue
                store_artifact(
                    rt,
                    job=job,
                    local_file=Path(path),
                    key=keys.track(job.user_id, track.id, "stems", key[:12], f"{kind}.wav"),
                    kind=kind,
                    stage=Stage.separate,
                    inputs=key,
                    content_type="audio/wav",
                    filename=f"{stem}-{kind}.wav",
                    meta=meta,
                    track_id=track.id,
                    voice_id=track.voice_id,
                    conversion_id=job.conversion_id,
                )
        finally:
            shutil.rmtree(work, ignore_errors=True)
        h.progress("separate", (i + 1) / n, f"separate: {track.filename} done", force=True)
