"""Songs in, mixed cover out, on local files: the whole workflow as one resumable call.

ingest → separate → slice → preprocess → train → convert → mix → report, each stage writing
into ``work_dir`` under names derived from its inputs and parameters. Running the same call
again after an interruption skips every finished stage (and training resumes from its last
checkpoint), so ``svc-studio pipeline`` can simply be started again.

The worker runs the same engine functions stage by stage with the database as its record;
this module is the local equivalent for the CLI.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from svc_core import recipes
from svc_core.audio.slicer import SliceParams, manifest_path, slice_file
from svc_core.errors import BadAudioError, BadInputError
from svc_core.ingest import IngestParams, ingest_file
from svc_core.mix import MixParams, mix_files
from svc_core.progress import ProgressFn, StopFn, check_stop, sub_progress
from svc_core.utils import file_sha256, resolve_device

STAGES = ("ingest", "separate", "slice", "preprocess", "train", "convert", "mix", "report")


@dataclass(frozen=True)
class PipelineParams:
    config: str = "base"
    f0_method: str | None = None  # None: the device's (svc_core.recipes.choose_f0_method)
    ppg_model: str | None = recipes.DEFAULT_PPG_MODEL  # asset names (svc-studio assets list)
    vec_model: str | None = recipes.DEFAULT_VEC_MODEL
    separation_model: str | None = None
    dereverb: bool = False
    references_are_vocals: bool = False
    source_is_vocals: bool = False
    max_steps: int | None = None
    max_epochs: int | None = None
    max_minutes: float | None = None
    # None: so-vits-svc 5.0's pretrain when installed and usable (svc_core.recipes);
    # "none": from scratch; else an asset name or a model file to fine-tune from
    base_model: str | None = None
    speaker_encoder: str | None = None  # None: follows the base model (recipes.plan_start)
    target_lufs: float | None = recipes.DEFAULT_TARGET_LUFS  # slices' loudness before features
    transpose: float | None = 0.0  # None: automatic
    slicer: SliceParams = field(default_factory=SliceParams)
    mix: MixParams = field(default_factory=MixParams)
    transpose_instrumental: bool = True  # keep the instrumental in tune with the vocals
    device: str = "auto"


@dataclass
class PipelineResult:
    mix: Path
    voice_package: Path
    speaker: Path
    converted_vocals: Path
    report: dict[str, Any]
    work_dir: Path


def _key(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


def run_pipeline(
    references: Sequence[str | os.PathLike],
    source: str | os.PathLike,
    out: str | os.PathLike,
    work_dir: str | os.PathLike,
    models_dir: str | os.PathLike,
    params: PipelineParams = PipelineParams(),
    progress: ProgressFn | None = None,
    should_stop: StopFn | None = None,
) -> PipelineResult:
    """Run (or resume) the whole workflow. ``progress(stage, fraction)`` per stage."""
    from svc_core.convert.engine import convert_file, reference_f0_from_histogram
    from svc_core.preprocess import build_dataset
    from svc_core.quality import quality_report
    from svc_core.report.coverage import SliceStats, coverage_report
    from svc_core.separation import separate
    from svc_core.train.package import export_voice_package
    from svc_core.train.trainer import TrainParams, train

    report = progress or (lambda _s, _f: None)
    work = Path(work_dir)
    models = Path(models_dir)
    work.mkdir(parents=True, exist_ok=True)
    if not references:
        raise BadInputError("give at least one reference song of the target singer")
    device = resolve_device(params.device)
    cuda = device != "cpu"

    # 1. ingest
    def ingest(path: Path, i: int, n: int) -> Path:
        check_stop(should_stop)
        dst = work / "ingest" / f"{file_sha256(path)[:16]}.wav"
        if not dst.exists():
            ingest_file(
                path,
                dst,
                IngestParams(),
                sub_progress(report, "ingest", i / n, (i + 1) / n),
                should_stop,
            )
        return dst

    refs = [Path(p) for p in references]
    total = len(refs) + 1
    decoded = [ingest(p, i, total) for i, p in enumerate(refs)]
    decoded_src = ingest(Path(source), len(refs), total)
    report("ingest", 1.0)

    # 2. separate
    def stems(path: Path, vocals_only: bool, i: int, n: int) -> Path:
        check_stop(should_stop)
        sp = recipes.separation_params(
            params.separation_model, cuda=cuda, dereverb=params.dereverb, vocals_only=vocals_only
        )
        folder = work / "stems" / f"{path.stem}-{_key(asdict(sp))}"
        if not (folder / "vocals.wav").exists():
            separate(
                path,
                folder,
                sp,
                models,
                sub_progress(report, "separate", i / n, (i + 1) / n),
                should_stop,
            )
        return folder

    ref_stems = [stems(p, params.references_are_vocals, i, total) for i, p in enumerate(decoded)]
    src_stems = stems(decoded_src, params.source_is_vocals, len(decoded), total)
    report("separate", 1.0)

    # 3. slice
    slices: list[Path] = []
    problems: list[str] = []
    for i, folder in enumerate(ref_stems):
        check_stop(should_stop)
        vocals = folder / "vocals.wav"
        dst = work / "slices" / f"{folder.name}-{_key(params.slicer.to_dict())}"
        mpath = manifest_path(dst, vocals)
        if not mpath.exists():
            try:
                slice_file(
                    vocals,
                    dst,
                    params.slicer,
                    sub_progress(report, "slice", i / len(ref_stems), (i + 1) / len(ref_stems)),
                    should_stop,
                )
            except BadAudioError as exc:
                problems.append(f"{refs[i].name}: {exc}")
                continue
        data = json.loads(mpath.read_text("utf-8"))
        slices += [dst / x["path"] for x in data["slices"]]
    if not slices:
        raise BadInputError(
            "no singing could be sliced from the references: " + "; ".join(problems)
        )
    report("slice", 1.0)

    # 4. preprocess (the start plan decides the speaker encoder: 5.0's pretrain needs 5.0's)
    features = recipes.choose_features(
        models_dir=models,
        cuda=cuda,
        config=params.config,
        f0_method=params.f0_method,
        ppg_model=params.ppg_model,
        vec_model=params.vec_model,
        base_model=params.base_model,
        speaker_encoder=params.speaker_encoder,
        target_lufs=params.target_lufs,
    )
    plan = recipes.StartPlan(**features.start)
    pp = recipes.preprocess_params(features, models_dir=models, device=device)
    f0p = pp.f0
    dataset = work / "dataset"
    built = build_dataset(
        slices, dataset, pp, sub_progress(report, "preprocess", 0, 0.95), should_stop
    )
    hop_s = pp.f0_params.hop_s
    coverage = coverage_report(
        [SliceStats(f0=np.load(s.f0_path), duration_s=s.seconds, name=s.id) for s in built.slices],
        hop_s=hop_s,
        f0_method=pp.f0.method,
    ).to_dict()
    (work / "coverage.json").write_text(json.dumps(coverage, indent=1), "utf-8")
    report("preprocess", 1.0)

    # 5. train (resumes from the run folder's newest checkpoint)
    minutes = params.max_minutes
    if minutes is None and params.max_steps is None and params.max_epochs is None:
        minutes = 120.0
    tp = TrainParams(
        max_steps=params.max_steps,
        max_epochs=params.max_epochs,
        max_seconds=None if minutes is None else minutes * 60.0,
        base_model=recipes.resolve_base_model(plan.base_model, models, allow_files=True),
        device=params.device,
        save_every_s=120.0,
    )
    result = train(
        dataset,
        work / "train" / params.config,
        params.config,
        tp,
        sub_progress(report, "train", 0, 0.98),
        should_stop,
    )
    package = work / "voice.zip"
    meta = {
        "features": features.to_dict(),
        "start": plan.to_dict(),
        "pitch_histogram": coverage.get("histogram"),
        "pitch_hop_s": hop_s,
        "train": {
            "step": result.step,
            "starts_from": result.starts_from,
            "best_val_mel": result.best_val_mel,
        },
    }
    export_voice_package(
        result.best_checkpoint or result.checkpoint, package, built.speaker_path, meta
    )
    report("train", 1.0)

    # 6. convert
    cp = recipes.convert_params(
        features, models_dir=models, device=device, has_index=False, transpose=params.transpose
    )
    conv_dir = (
        work
        / "convert"
        / _key(file_sha256(src_stems / "vocals.wav"), file_sha256(package), repr(cp))
    )
    reference = reference_f0_from_histogram(coverage.get("histogram") or [], hop_s)
    summary_path = conv_dir / "summary.json"
    if not summary_path.exists():
        res, _, _ = convert_file(
            src_stems / "vocals.wav",
            conv_dir,
            package,
            cp,
            reference_f0=reference if reference.size else None,
            device=device,
            progress=sub_progress(report, "convert", 0, 1),
            should_stop=should_stop,
        )
        summary_path.write_text(json.dumps(res.summary()), "utf-8")
    summary = json.loads(summary_path.read_text("utf-8"))
    report("convert", 1.0)

    # 7. mix
    semitones = float(summary["transpose"]["semitones"])
    mp = replace(
        params.mix, transpose_instrumental=semitones if params.transpose_instrumental else 0.0
    )
    inst = src_stems / "instrumental.wav"
    mix_report = mix_files(
        conv_dir / "vocals.wav",
        inst if inst.exists() else None,
        out,
        mp,
        reference_vocals=src_stems / "vocals.wav",
        progress=sub_progress(report, "mix", 0, 1),
        should_stop=should_stop,
    )

    # 8. report
    from svc_core.audio.io import load_audio

    conv_audio, conv_sr = load_audio(conv_dir / "vocals.wav")
    src_audio, src_sr = load_audio(src_stems / "vocals.wav")
    q = quality_report(
        conv_audio,
        conv_sr,
        src_audio,
        src_sr,
        np.load(built.judge_path),  # GE2E centroid: the independent judge
        transpose_semitones=semitones,
        f0=f0p,
    )
    full = {
        "quality": q.to_dict(),
        "verdicts": q.verdicts,
        "transpose": summary["transpose"],
        "mix": mix_report.to_dict(),
        "coverage": coverage,
        "train": meta["train"],
        "slices_skipped": built.skipped[:20] + problems,
    }
    (work / "report.json").write_text(json.dumps(full, indent=1, default=str), "utf-8")
    report("report", 1.0)
    return PipelineResult(
        mix=Path(out),
        voice_package=package,
        speaker=built.speaker_path,
        converted_vocals=conv_dir / "vocals.wav",
        report=full,
        work_dir=work,
    )
