"""Slice stage: each track's vocals → slices at silences (Audio Slicer algorithm).

The slices go to storage under the track, with the slicer's JSON manifest recorded as a
``slices`` artifact (its meta: count and seconds). Reused when the same vocals were sliced
with the same parameters.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from app.core import keys
from app.core.names import ArtifactKind, Stage
from app.core.params import IndexRequest, TrainRequest
from svc_core.errors import BadAudioError, BadInputError
from svc_core.progress import check_stop
from worker.jobs.common import (
    find_artifact,
    inputs_key,
    snapshot,
    store_artifact,
    temp_dir,
    usable_tracks,
)
from worker.jobs.runtime import JobHandle, Runtime


def slice_params(request: TrainRequest | IndexRequest):
    from svc_core.audio.slicer import SliceParams

    return SliceParams(**request.slicer.model_dump())


def run(rt: Runtime, h: JobHandle) -> None:
    from svc_core.audio.slicer import manifest_path, slice_file

    job = snapshot(rt, h)
    params = slice_params(job.params)
    tracks = usable_tracks(rt, job)
    n = len(tracks)
    problems: list[str] = []
    made = 0
    for i, track in enumerate(tracks):
        check_stop(h.should_stop)
        vocals = find_artifact(rt, user_id=job.user_id, kind=ArtifactKind.vocals, track_id=track.id)
        if vocals is None:
            problems.append(f"{track.filename}: no vocals (separation did not run)")
            continue
        key = inputs_key("slice", vocals.sha256, params)
        if find_artifact(
            rt, user_id=job.user_id, kind=ArtifactKind.slices, track_id=track.id, inputs=key
        ):
            made += 1
            h.progress("slice", (i + 1) / n, f"slice: {track.filename} already sliced")
            continue
        h.progress("slice", i / n, f"slice: {track.filename} ({i + 1}/{n})", force=True)
        work = temp_dir(rt)
        src = work / f"{Path(track.filename).stem[:60] or 'track'}.wav"
        try:
            shutil.copyfile(rt.storage.path(vocals.storage_key), src)
            out = work / "slices"
            try:
                infos = slice_file(
                    src,
                    out,
                    params,
                    progress=h.sub_progress("slice", i / n, (i + 1) / n),
                    should_stop=h.should_stop,
                )
            except BadAudioError as exc:  # the message names our copy: name the upload
                problems.append(str(exc).replace(f"'{src.name}'", f"'{track.filename}'"))
                continue
            prefix = keys.track(job.user_id, track.id, "slices", key[:12])
            for info in infos:
                rt.storage.put_file(f"{prefix}/{info.path}", out / info.path, move=True)
            seconds = round(sum(x.duration_s for x in infos), 3)
            store_artifact(
                rt,
                job=job,
                local_file=manifest_path(out, src),
                key=f"{prefix}/manifest.json",
                kind=ArtifactKind.slices,
                stage=Stage.slice,
                inputs=key,
                content_type="application/json",
                filename=f"{src.stem}-slices.json",
                meta={"count": len(infos), "seconds": seconds, "params": params.to_dict()},
                track_id=track.id,
                voice_id=track.voice_id,
            )
            made += 1
        finally:
            shutil.rmtree(work, ignore_errors=True)
    if made == 0:
        raise BadInputError(
            "No singing could be sliced from the uploads. " + "; ".join(problems)
            if problems
            else "There are no tracks to slice."
        )
    if problems:
        h.save_state(slice_warnings=problems)
