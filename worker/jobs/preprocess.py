"""Preprocess stage: a voice's slices → its training dataset, ``.spk.npy`` and coverage report.

The dataset lives in storage under the voice (``u/<user>/voices/<voice>/dataset``) with a
per-slice feature cache, so a resumed job or a re-run after adding a song computes only the
new slices. Content-encoder and F0 settings are resolved here once and stored with the
voice: conversion reuses exactly what training used.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from sqlalchemy import select

from app.core import keys
from app.core.db.models import Artifact, Voice
from app.core.names import ArtifactKind, Stage
from app.core.params import TrainRequest
from svc_core.errors import BadInputError
from svc_core.recipes import Features, choose_features, preprocess_params
from worker.jobs.common import (
    find_artifact,
    inputs_key,
    safe_stem,
    snapshot,
    store_artifact,
    temp_dir,
    voice_of,
    worker_cuda,
    worker_device,
)
from worker.jobs.runtime import JobHandle, Runtime


def voice_features(rt: Runtime, request: TrainRequest) -> Features:
    """The voice's feature settings for this worker's device (svc_core.recipes decides)."""
    return choose_features(
        models_dir=rt.settings.models_dir,
        cuda=worker_cuda(),
        config=request.config,
        f0_method=request.f0_method,
        ppg_model=request.ppg_model,
        vec_model=request.vec_model,
        base_model=request.base_model,
        speaker_encoder=request.speaker_encoder,
        target_lufs=request.target_lufs,
    )


def voice_slices(rt: Runtime, *, user_id: str, voice_id: str) -> list[Path]:
    """Slice files of the voice: the newest slicing of each of its tracks."""
    with rt.scope() as s:
        arts = list(
            s.scalars(
                select(Artifact)
                .where(
                    Artifact.user_id == user_id,
                    Artifact.voice_id == voice_id,
                    Artifact.kind == ArtifactKind.slices,
                )
                .order_by(Artifact.created_at.desc())
            )
        )
        s.expunge_all()
    seen: set[str | None] = set()
    paths: list[Path] = []
    for art in arts:
        if art.track_id in seen or not rt.storage.exists(art.storage_key):
            continue
        seen.add(art.track_id)
        manifest = rt.storage.path(art.storage_key)
        data = json.loads(manifest.read_text("utf-8"))
        paths += [manifest.parent / x["path"] for x in data["slices"]]
    return sorted(paths)


def coverage_of(result, f0) -> dict:
    """The voice's coverage report (pitch range, histogram, amount of data, warnings) from
    a dataset built with F0 settings ``f0`` (``PreprocessParams.f0_params``)."""
    import numpy as np

    from svc_core.report.coverage import SliceStats, coverage_report

    stats = [
        SliceStats(f0=np.load(x.f0_path), duration_s=x.seconds, name=x.id) for x in result.slices
    ]
    return coverage_report(stats, hop_s=f0.hop_s, f0_method=f0.method).to_dict()


def run(rt: Runtime, h: JobHandle) -> None:
    from svc_core.preprocess import build_dataset

    job = snapshot(rt, h)
    voice_id = voice_of(job)
    features = voice_features(rt, job.params)
    feats = features.to_dict()
    params = preprocess_params(features, models_dir=rt.settings.models_dir, device=worker_device())
    slices = voice_slices(rt, user_id=job.user_id, voice_id=voice_id)
    if not slices:
        raise BadInputError("There are no slices of singing to learn from.")
    dataset = rt.storage.path(keys.voice(job.user_id, voice_id, "dataset"))
    start = features.start.get("reason", "")
    h.progress(
        "preprocess",
        0.0,
        f"preprocess: features of {len(slices)} slices (the voice will train {start})",
        force=True,
    )
    result = build_dataset(
        slices,
        dataset,
        params,
        progress=lambda _s, f: h.progress("preprocess", 0.95 * f),
        should_stop=h.should_stop,
        meta={"settings": feats},
    )
    coverage = coverage_of(result, params.f0_params)
    warnings = [f"skipped slice {x}" for x in result.skipped]
    with rt.scope() as s:
        voice = s.get(Voice, voice_id)
        assert voice is not None
        name = voice.name
        voice.settings = {**(voice.settings or {}), "features": feats}
        voice.report = {**coverage, "skipped": warnings[:50]}
    key = inputs_key("spk", [p.name for p in slices], params.feature_key())
    safe = safe_stem(name)
    # the model's speaker vector, and the GE2E centroid the quality report judges with
    for kind, src, label in (
        (ArtifactKind.spk, result.speaker_path, ""),
        (ArtifactKind.spk_judge, result.judge_path, "-ge2e"),
    ):
        if find_artifact(rt, user_id=job.user_id, kind=kind, voice_id=voice_id, inputs=key):
            continue
        work = temp_dir(rt)
        try:
            local = work / "speaker.spk.npy"
            shutil.copyfile(src, local)
            store_artifact(
                rt,
                job=job,
                local_file=local,
                key=keys.voice(job.user_id, voice_id, f"{kind}-{key[:12]}.spk.npy"),
                kind=kind,
                stage=Stage.preprocess,
                inputs=key,
                content_type="application/octet-stream",
                filename=f"{safe}{label}.spk.npy",
                meta={"slices": len(result.slices), "encoder": params.speaker.encoder},
                voice_id=voice_id,
            )
        finally:
            shutil.rmtree(work, ignore_errors=True)
    h.save_state(
        preprocess={
            "slices": len(result.slices),
            "reused": result.reused,
            "skipped": result.skipped[:20],
        }
    )
