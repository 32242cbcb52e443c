"""Preprocess stage: a voice's slices → its training dataset, ``.spk.npy`` and coverage report.

The dataset lives in storage under the voice (``u/<user>/voices/<voice>/dataset``) with a
per-slice feature cache, so a resumed job or a re-run after adding a song computes only the
new slices. Content-encoder and F0 settings are resolved here once and stored with the
voice: conversion reuses exactly what training used.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

from sqlalchemy import select

from app.core.db.models import Artifact, Voice
from svc_core.errors import BadInputError
from worker.jobs.common import find_artifact, inputs_key, snapshot, store_artifact, temp_dir
from worker.jobs.runtime import JobHandle, Runtime


def feature_settings(rt: Runtime, job_params: dict) -> dict:
    """The voice's feature settings: model rate/hop, F0 method, content encoders (by asset),
    and the start plan (base model and the speaker encoder it needs, svc_core.recipes)."""
    from svc_core.f0.base import canonical_method, recommended_method
    from svc_core.model.config import load_config
    from svc_core.recipes import plan_start

    config = job_params.get("config") or "base"
    cfg = load_config(config)
    f0 = job_params.get("f0_method") or recommended_method(_cuda())
    ppg = job_params.get("ppg_model", "whisper-large-v2")
    vec = job_params.get("vec_model", "hubert-soft")
    if not ppg and not vec:
        raise BadInputError("Choose a PPG model, a vec model or both for the content features.")
    plan = plan_start(
        job_params.get("base_model"),
        config=config,
        ppg_model=ppg or None,
        vec_model=vec or None,
        models_dir=rt.settings.models_dir,
        speaker_encoder=job_params.get("speaker_encoder"),
    )
    return {
        "config": config,
        "speaker_encoder": plan.speaker_encoder,
        "start": plan.to_dict(),
        "sample_rate": cfg.audio.sample_rate,
        "hop_length": cfg.audio.hop_length,
        "f0_method": canonical_method(f0),
        "ppg_model": ppg or None,
        "vec_model": vec or None,
        "target_lufs": job_params.get("target_lufs", -20.0),
    }


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def f0_params(rt: Runtime, method: str):
    """F0 settings for a method: only RMVPE needs a weights file from the model assets."""
    from svc_core.assets import asset_path
    from svc_core.f0.base import F0Params

    weights = str(asset_path("rmvpe", rt.settings.models_dir)) if method == "rmvpe" else None
    return F0Params(method=method, device="cuda" if _cuda() else "cpu", weights_path=weights)


def preprocess_params(rt: Runtime, feats: dict, *, with_speaker: bool = True):
    """Engine settings of the voice's features (``with_speaker=False``: conversion, which
    needs no speaker encoder)."""
    from svc_core.assets import asset_path
    from svc_core.preprocess import params_for

    models = rt.settings.models_dir

    def resolve(name: str | None) -> str | None:
        return str(asset_path(name, models)) if name else None

    encoder = feats.get("speaker_encoder", "ge2e") if with_speaker else "ge2e"
    params = params_for(
        feats.get("config") or "base",  # sample rate and hop; conversion uses the model's
        f0_method=feats["f0_method"],
        ppg_checkpoint=resolve(feats["ppg_model"]),
        vec_checkpoint=resolve(feats["vec_model"]),
        device="cuda" if _cuda() else "cpu",
        speaker_encoder=encoder,
        speaker_model=resolve("sovits5-speaker") if encoder == "sovits5" else None,
    )
    return replace(
        params, f0=f0_params(rt, feats["f0_method"]), target_lufs=feats.get("target_lufs", -20.0)
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
                    Artifact.kind == "slices",
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


def coverage_of(result, hop_s: float) -> dict:
    """The voice's coverage report (pitch range, histogram, amount of data, warnings)."""
    import numpy as np

    from svc_core.report.coverage import SliceStats, coverage_report

    stats = [
        SliceStats(f0=np.load(x.f0_path), duration_s=x.seconds, name=x.id) for x in result.slices
    ]
    return coverage_report(stats, hop_s=hop_s).to_dict()


def run(rt: Runtime, h: JobHandle) -> None:
    from svc_core.preprocess import build_dataset

    job = snapshot(rt, h)
    if not job.voice_id:
        raise BadInputError("Preprocessing needs a voice.")
    feats = feature_settings(rt, job.params)
    params = preprocess_params(rt, feats)
    slices = voice_slices(rt, user_id=job.user_id, voice_id=job.voice_id)
    if not slices:
        raise BadInputError("There are no slices of singing to learn from.")
    dataset = rt.storage.path(f"u/{job.user_id}/voices/{job.voice_id}/dataset")
    start = (feats.get("start") or {}).get("reason", "")
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
    coverage = coverage_of(result, params.f0_params.hop_s)
    warnings = [f"skipped slice {x}" for x in result.skipped]
    with rt.scope() as s:
        voice = s.get(Voice, job.voice_id)
        assert voice is not None
        name = voice.name
        voice.settings = {**(voice.settings or {}), "features": feats}
        voice.report = {**coverage, "skipped": warnings[:50]}
    key = inputs_key("spk", [p.name for p in slices], params.feature_key())
    safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in name)[:60] or "voice"
    # the model's speaker vector, and the GE2E centroid the quality report judges with
    for kind, src, label in (
        ("spk", result.speaker_path, ""),
        ("spk_judge", result.judge_path, "-ge2e"),
    ):
        if find_artifact(rt, user_id=job.user_id, kind=kind, voice_id=job.voice_id, inputs=key):
            continue
        work = temp_dir(rt)
        try:
            local = work / "speaker.spk.npy"
            shutil.copyfile(src, local)
            store_artifact(
                rt,
                job=job,
                local_file=local,
                key=f"u/{job.user_id}/voices/{job.voice_id}/{kind}-{key[:12]}.spk.npy",
                kind=kind,
                stage="preprocess",
                inputs=key,
                content_type="application/octet-stream",
                filename=f"{safe}{label}.spk.npy",
                meta={"slices": len(result.slices), "encoder": params.speaker.encoder},
                voice_id=job.voice_id,
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
