"""Train stage: the voice's dataset → a trained model, exported as a voice package.

The run folder lives in storage under the voice and config (``.../voices/<id>/train/<cfg>``),
so a job that restarts — after a cancel-and-retrain, a worker killed mid-step, a worker shut
down — resumes from the newest checkpoint there (the trainer refuses an incompatible one
with a plain message instead of silently starting over). The loss curve goes to
``job.metrics`` as it grows; evaluation previews and the voice package become artifacts.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any

from app.core import keys
from app.core.db.models import Job, Voice
from app.core.names import ArtifactKind, Stage
from app.core.params import TrainRequest
from svc_core.errors import BadInputError
from svc_core.recipes import Features
from svc_core.train.events import (
    CheckpointSaved,
    Evaluated,
    StepLogged,
    TrainEnded,
    TrainEvent,
    TrainStarted,
)
from worker.jobs.common import (
    find_artifact,
    safe_stem,
    snapshot,
    store_artifact,
    store_retrieval_index,
    temp_dir,
    voice_of,
)
from worker.jobs.runtime import JobHandle, Runtime

MAX_CURVE_POINTS = 400
DEFAULT_MAX_MINUTES = 120.0
METRICS_WRITE_INTERVAL_S = 2.0


def _thin(points: list[dict]) -> list[dict]:
    """Keep the curve under MAX_CURVE_POINTS: halve the older half's density when over."""
    if len(points) <= MAX_CURVE_POINTS:
        return points
    half = len(points) // 2
    return points[:half:2] + points[half:]


class CurveRecorder:
    """Turns trainer events into ``job.metrics`` (throttled writes)."""

    def __init__(
        self,
        rt: Runtime,
        h: JobHandle,
        previous: dict[str, Any] | None,
        limits: dict[str, Any] | None = None,
    ):
        """``limits``: the stop rules in effect, shown with the run (``train.limits``)."""
        self.rt, self.h = rt, h
        self.limits = limits or {}
        self.metrics: dict[str, Any] = {"curve": [], "train": {}}
        if previous:  # a resumed job keeps its curve up to the checkpoint it resumes from
            self.metrics.update(previous)
        self.last_write = 0.0

    def __call__(self, e: TrainEvent) -> None:
        m = self.metrics
        if isinstance(e, TrainStarted):
            m["train"] = {
                "starts_from": e.starts_from,
                "step": e.step,
                "epoch": e.epoch,
                "device": e.device,
                "resumed_from_step": e.resumed_from_step,
                "train_slices": e.train_slices,
                "notes": list(e.notes),
                "limits": self.limits,
            }
            m["curve"] = [p for p in m["curve"] if p["step"] <= e.step]
            origin = e.starts_from if e.starts_from.startswith("from ") else f"from {e.starts_from}"
            resumed = f", resuming at step {e.step}" if e.resumed_from_step else ""
            self.h.progress(
                "train", 0.0, f"train: starting {origin}{resumed} on {e.device}", force=True
            )
        elif isinstance(e, StepLogged):
            losses = e.losses
            point = {
                "step": e.step,
                "epoch": e.epoch,
                "mel": losses.get("mel"),
                "total": losses.get("loss_g"),
                "disc": losses.get("loss_d"),
                "val_mel": None,
            }
            m["curve"] = _thin([*m["curve"], point])
            m["train"].update(step=e.step, epoch=e.epoch, steps_per_s=e.steps_per_s)
            self.h.progress(
                "train",
                # steps fill 0..0.95 of the stage; exporting the voice is the rest
                0.95 * e.fraction,
                f"train: step {e.step}, mel loss {losses.get('mel', 0):.3f}",
            )
        elif isinstance(e, Evaluated):
            point = {
                "step": e.step,
                "epoch": e.epoch,
                "mel": None,
                "total": None,
                "disc": None,
                "val_mel": e.val_mel,
            }
            m["curve"] = _thin([*m["curve"], point])
            best = m["train"].get("best_val_mel")
            m["train"]["best_val_mel"] = e.val_mel if best is None else min(best, e.val_mel)
            m["previews"] = list(e.previews)
        elif isinstance(e, TrainEnded):
            keys = ("step", "epoch", "stopped_by", "best_val_mel", "starts_from", "notes")
            m["train"].update({k: e.result.get(k) for k in keys})
        if isinstance(e, TrainStarted | Evaluated | TrainEnded | CheckpointSaved) or (
            time.monotonic() - self.last_write > METRICS_WRITE_INTERVAL_S
        ):
            self.flush()

    def flush(self) -> None:
        self.last_write = time.monotonic()
        with self.rt.scope() as s:
            job = s.get(Job, self.h.job_id)
            if job is not None:
                job.metrics = json.loads(json.dumps(self.metrics, default=str))


def train_params(rt: Runtime, request: TrainRequest, features: Features | None = None):
    """Stop rules from the request; the base model from the voice's start plan (decided
    with its features at preprocessing: 5.0's pretrain needs 5.0's speaker vectors)."""
    from svc_core.recipes import resolve_base_model
    from svc_core.train.trainer import TrainParams

    minutes = request.max_minutes
    steps, epochs = request.max_steps, request.max_epochs
    if minutes is None and steps is None and epochs is None:
        minutes = DEFAULT_MAX_MINUTES
    start = features.start if features is not None else None
    base = start["base_model"] if start else request.base_model
    return TrainParams(
        max_steps=steps,
        max_epochs=epochs,
        max_seconds=None if minutes is None else float(minutes) * 60.0,
        base_model=resolve_base_model(base, rt.settings.models_dir),
        save_every_s=120.0,
    )


def stop_rules(request: TrainRequest, params: Any) -> dict[str, Any]:
    """The stop rules a run uses, for the page: the request's, or the default time limit."""
    return {
        "max_steps": params.max_steps,
        "max_epochs": params.max_epochs,
        "max_minutes": None if params.max_seconds is None else params.max_seconds / 60.0,
        "default_minutes": request.max_minutes is None and params.max_seconds is not None,
    }


def run(rt: Runtime, h: JobHandle) -> None:
    from svc_core.train.package import export_voice_package
    from svc_core.train.trainer import train

    job = snapshot(rt, h)
    voice_id = voice_of(job)
    with rt.scope() as s:
        voice = s.get(Voice, voice_id)
        j = s.get(Job, h.job_id)
        assert voice is not None and j is not None
        stored = (voice.settings or {}).get("features")
        coverage = voice.report
        name = voice.name
        previous = dict(j.metrics) if j.metrics else None
    if not stored:
        raise BadInputError("The voice has no preprocessed dataset: run preprocessing first.")
    features = Features.from_dict(stored)
    config = features.config
    dataset = rt.storage.path(keys.voice(job.user_id, voice_id, "dataset"))
    out_dir = rt.storage.path(keys.voice(job.user_id, voice_id, "train", config))
    params = train_params(rt, job.params, features)
    recorder = CurveRecorder(rt, h, previous, limits=stop_rules(job.params, params))
    h.progress("train", 0.0, "train: starting", force=True)
    try:
        result = train(
            dataset,
            out_dir,
            config,
            params,
            progress=lambda _s, f: None,  # the recorder reports progress with the step
            should_stop=h.should_stop,
            on_event=recorder,
        )
    finally:
        recorder.flush()
    h.progress("train", 0.97, f"train: done ({result.stopped_by}), exporting the voice", force=True)
    checkpoint = result.best_checkpoint or result.checkpoint
    meta = {
        "voice": name,
        "features": features.to_dict(),
        "pitch_histogram": (coverage or {}).get("histogram"),
        "pitch_hop_s": (coverage or {}).get("hop_s"),
        "train": {
            k: v
            for k, v in result.to_dict().items()
            if k
            in (
                "step",
                "epoch",
                "stopped_by",
                "starts_from",
                "best_val_mel",
                "last_val_mel",
                "train_seconds",
                "config_hash",
                "notes",
            )
        },
    }
    work = temp_dir(rt)
    try:
        safe = safe_stem(name)
        h.progress("train", 0.97, "train: building the voice's retrieval index", force=True)
        index = _build_index(rt, job, dataset, work, safe)
        pkg = export_voice_package(
            checkpoint, work / "voice.zip", dataset / "speaker.npy", meta, index=index
        )
        store_artifact(
            rt,
            job=job,
            local_file=pkg,
            key=keys.voice(job.user_id, voice_id, f"voice-{job.id[:8]}-{result.step}.zip"),
            kind=ArtifactKind.voice_package,
            stage=Stage.train,
            inputs=result.config_hash,
            content_type="application/zip",
            filename=f"{safe}.svcvoice.zip",
            meta=meta["train"],
            voice_id=job.voice_id,
        )
        _store_previews(rt, job, result.previews_dir, work)
        metrics = work / "metrics.jsonl"
        shutil.copyfile(result.metrics_path, metrics)
        store_artifact(
            rt,
            job=job,
            local_file=metrics,
            key=keys.voice(job.user_id, voice_id, f"train-{job.id[:8]}-metrics.jsonl"),
            kind=ArtifactKind.metrics,
            stage=Stage.train,
            inputs=None,
            content_type="application/x-ndjson",
            filename=f"{safe}-training-metrics.jsonl",
            voice_id=job.voice_id,
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _build_index(rt: Runtime, job, dataset: Path, work: Path, safe: str) -> Path:
    """The voice's feature-retrieval index from its training features, as an artifact."""
    from svc_core.retrieval import build_voice_index, dataset_features, save_voice_index

    index = build_voice_index(dataset_features(dataset))
    path = save_voice_index(index, work / "voice.svcindex")
    store_retrieval_index(  # copied: the package takes the local file too
        rt,
        job=job,
        local_file=path,
        index=index,
        tag=job.id[:8],
        stage=Stage.train,
        filename=f"{safe}.svcindex",
    )
    return path


def _store_previews(rt: Runtime, job, previews_dir: Path, work: Path) -> None:
    """The newest evaluation's preview WAVs become ``preview`` artifacts of the voice."""
    steps = sorted(p for p in Path(previews_dir).glob("step_*") if p.is_dir())
    if not steps:
        return
    latest = steps[-1]
    step = int(latest.name.removeprefix("step_"))
    for n, wav in enumerate(sorted(latest.glob("*.wav")), start=1):
        if find_artifact(
            rt,
            user_id=job.user_id,
            kind=ArtifactKind.preview,
            voice_id=job.voice_id,
            inputs=f"{latest.name}/{wav.name}",
        ):
            continue
        tmp = work / wav.name
        shutil.copyfile(wav, tmp)
        store_artifact(
            rt,
            job=job,
            local_file=tmp,
            key=keys.voice(job.user_id, voice_of(job), "previews", f"{latest.name}-{wav.name}"),
            kind=ArtifactKind.preview,
            stage=Stage.train,
            inputs=f"{latest.name}/{wav.name}",
            content_type="audio/wav",
            filename=f"preview-{latest.name}-{wav.name}",
            meta={"step": step, "label": f"Preview {n} (validation slice) after step {step}"},
            voice_id=job.voice_id,
        )
