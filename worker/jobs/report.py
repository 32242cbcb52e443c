"""Report stage: how close the conversion came, in numbers and plain words."""

from __future__ import annotations

from app.core.db.models import Conversion
from app.core.names import ArtifactKind
from svc_core.errors import BadInputError
from svc_core.recipes import preprocess_params
from worker.jobs.common import conversion_context, find_artifact, snapshot, worker_device
from worker.jobs.runtime import JobHandle, Runtime


def run(rt: Runtime, h: JobHandle) -> None:
    from svc_core.audio.io import load_audio
    from svc_core.quality import quality_report
    from svc_core.speaker import load_spk

    job = snapshot(rt, h)
    ctx = conversion_context(rt, job)
    features, report, options = ctx.features, ctx.report, ctx.options
    conv_id, track_id, voice_id = ctx.id, ctx.track_id, ctx.voice_id
    converted = find_artifact(
        rt, user_id=job.user_id, kind=ArtifactKind.converted_vocals, conversion_id=conv_id
    )
    source = find_artifact(rt, user_id=job.user_id, kind=ArtifactKind.vocals, track_id=track_id)
    if converted is None or source is None or features is None:
        raise BadInputError("The conversion's results are missing: run the conversion again.")
    # the judge: the voice's GE2E centroid (its own speaker vector when it was trained on GE2E)
    judge = find_artifact(rt, user_id=job.user_id, kind=ArtifactKind.spk_judge, voice_id=voice_id)
    if judge is None and features.speaker_encoder == "ge2e":
        judge = find_artifact(rt, user_id=job.user_id, kind=ArtifactKind.spk, voice_id=voice_id)
    h.progress("report", 0.05, "report: measuring similarity and pitch", force=True)
    conv_audio, conv_sr = load_audio(rt.storage.path(converted.storage_key))
    src_audio, src_sr = load_audio(rt.storage.path(source.storage_key))
    h.progress("report", 0.3)
    semitones = float((report.get("transpose") or {}).get("semitones", 0.0))
    q = quality_report(
        conv_audio,
        conv_sr,
        src_audio,
        src_sr,
        None if judge is None else load_spk(rt.storage.path(judge.storage_key)),
        transpose_semitones=semitones,
        # the conversion's F0 method; the content encoders are not needed to measure
        f0=preprocess_params(
            features,
            models_dir=rt.settings.models_dir,
            device=worker_device(),
            with_speaker=False,
            f0_method=options.f0_method,
        ).f0,
        progress=h.sub_progress("report", 0.3, 0.95),
        should_stop=h.should_stop,
    )
    verdicts = list(q.verdicts)
    fit = (report.get("transpose") or {}).get("fit")
    if fit and fit.get("message"):
        verdicts.append(f"Range: {fit['message']}.")
    # (a mix's loudness is not a verdict: it belongs to that mix, and a re-mix makes another;
    # each mix artifact carries its own numbers)
    with rt.scope() as s:
        c = s.get(Conversion, conv_id)
        assert c is not None
        c.report = {
            **(c.report or {}),
            "quality": q.to_dict(),
            "verdicts": verdicts,
            "coverage": fit,
        }
