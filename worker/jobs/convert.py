"""Convert stage: the source song's vocals → the target voice (gpu queue).

Uses the voice's newest package and the same F0 method and content encoders the voice was
trained with (unless the conversion overrides the F0 method). The pitch shift — fixed or
automatic into the voice's range — is recorded on the conversion for the mix and the report.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from app.core import keys
from app.core.db.models import Conversion
from app.core.names import ArtifactKind, Stage
from app.core.params import ConversionOptions
from svc_core import recipes
from svc_core.errors import BadInputError, Cancelled
from svc_core.recipes import Features
from worker.jobs.common import (
    conversion_context,
    find_artifact,
    inputs_key,
    snapshot,
    store_artifact,
    temp_dir,
    worker_device,
)
from worker.jobs.runtime import JobHandle, Runtime


def convert_params(rt: Runtime, features: Features, options: ConversionOptions, has_index: bool):
    """The voice's F0 method and content encoders (the conversion may override the F0 method)
    and the conversion's settings, for this worker's device (svc_core.recipes decides)."""
    return recipes.convert_params(
        features,
        models_dir=rt.settings.models_dir,
        device=worker_device(),
        has_index=has_index,
        f0_method=options.f0_method,
        transpose=options.transpose,
        retrieval_ratio=options.retrieval_ratio,
        protect=options.protect,
        volume_envelope=options.volume_envelope,
    )


def target_speaker(rt: Runtime, user_id: str, voice_id: str, options: ConversionOptions):
    """The voice's centroid, or its blend with another of the user's voices."""
    from svc_core.speaker import load_spk, mix_speakers

    other_id = options.mix_voice_id
    if not other_id:
        return None, {"voice_id": voice_id}  # the package's own centroid
    own = find_artifact(rt, user_id=user_id, kind=ArtifactKind.spk, voice_id=voice_id)
    other = find_artifact(rt, user_id=user_id, kind=ArtifactKind.spk, voice_id=other_id)
    if own is None or other is None:
        raise BadInputError("The voice to mix with has no speaker embedding: train it first.")
    encoders = {(own.meta or {}).get("encoder", "ge2e"), (other.meta or {}).get("encoder", "ge2e")}
    if len(encoders) > 1:
        raise BadInputError(
            "The two voices were trained on different speaker encoders (GE2E and so-vits-svc "
            "5.0's): their speaker vectors cannot be blended. Retrain one with the other's."
        )
    weight = options.mix_weight
    spk = mix_speakers(
        load_spk(rt.storage.path(own.storage_key)),
        load_spk(rt.storage.path(other.storage_key)),
        weight,
        normalise=encoders == {"ge2e"},
    )
    return spk, {"voice_id": voice_id, "mix_voice_id": other_id, "mix_weight": weight}


def run(rt: Runtime, h: JobHandle) -> None:
    import numpy as np

    from svc_core.convert.engine import convert_file, reference_f0_from_histogram

    job = snapshot(rt, h)
    ctx = conversion_context(rt, job)
    options, features, coverage = ctx.options, ctx.features, ctx.coverage
    voice_name, track_id, conv_id, song = ctx.voice_name, ctx.track_id, ctx.id, ctx.song
    package = find_artifact(
        rt, user_id=job.user_id, kind=ArtifactKind.voice_package, voice_id=ctx.voice_id
    )
    if package is None or features is None:
        raise BadInputError(f"The voice '{voice_name}' has not been trained yet: train it first.")
    vocals = find_artifact(rt, user_id=job.user_id, kind=ArtifactKind.vocals, track_id=track_id)
    if vocals is None:
        raise BadInputError(f"'{song}' has no vocals: separation did not run.")
    index = find_artifact(
        rt, user_id=job.user_id, kind=ArtifactKind.retrieval_index, voice_id=ctx.voice_id
    )
    params = convert_params(rt, features, options, has_index=index is not None)
    if params.retrieval_ratio == 0:
        index = None
    elif index is None:
        raise BadInputError(
            f"The voice '{voice_name}' has no retrieval index (it is built at the end of "
            "training, or from the voice's songs on its page): convert with "
            "retrieval_ratio 0, or build the index first."
        )
    key = inputs_key(
        "convert",
        vocals.sha256,
        package.sha256,
        params,
        options.mix_voice_id,
        options.mix_weight,
        index.sha256 if index is not None else None,
    )
    if find_artifact(
        rt,
        user_id=job.user_id,
        kind=ArtifactKind.converted_vocals,
        conversion_id=conv_id,
        inputs=key,
    ):
        h.progress("convert", 1.0, "convert: already converted", force=True)
        return
    speaker, speaker_info = target_speaker(rt, job.user_id, ctx.voice_id, options)
    hop_s = float(coverage.get("hop_s") or 0.01)
    reference = reference_f0_from_histogram(coverage.get("histogram") or [], hop_s)
    device = params.content.device
    h.progress("convert", 0.0, f"convert: '{song}' into '{voice_name}'", force=True)
    # finished chunks survive a worker that dies or shuts down: the next attempt continues
    partial = rt.storage.path(keys.conversion(job.user_id, conv_id, f"partial-{key[:12]}"))
    work = temp_dir(rt)
    try:
        result, model_rate, wav44 = convert_file(
            rt.storage.path(vocals.storage_key),
            work,
            rt.storage.path(package.storage_key),
            params,
            speaker=speaker,
            reference_f0=reference if reference.size else None,
            device=device,
            max_duration_s=rt.settings.max_audio_seconds,
            progress=h.sub_progress("convert", 0.0, 0.97),
            should_stop=h.should_stop,
            cache_dir=partial,
            index=rt.storage.path(index.storage_key) if index is not None else None,
        )
        summary = result.summary()
        stem = Path(song).stem
        np.save(work / "source_f0.npy", result.source_f0)
        for kind, path, name in (
            (ArtifactKind.source_f0, work / "source_f0.npy", f"{stem}-source-f0.npy"),
            (
                ArtifactKind.converted_vocals_model_rate,
                model_rate,
                f"{stem}-{voice_name}-vocals-model.wav",
            ),
            (ArtifactKind.converted_vocals, wav44, f"{stem}-{voice_name}-vocals.wav"),
        ):  # converted_vocals last: with this key it marks the stage as done
            store_artifact(
                rt,
                job=job,
                local_file=path,
                key=keys.conversion(job.user_id, conv_id, f"{kind}-{key[:12]}{path.suffix}"),
                kind=kind,
                stage=Stage.convert,
                inputs=key,
                content_type="audio/wav" if path.suffix == ".wav" else "application/octet-stream",
                filename=name,
                meta=summary,
                conversion_id=conv_id,
            )
    except Cancelled:
        if h.cancel_requested:  # the user cancelled: nothing of it is kept
            shutil.rmtree(partial, ignore_errors=True)
        raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    shutil.rmtree(partial, ignore_errors=True)
    with rt.scope() as s:
        c = s.get(Conversion, conv_id)
        assert c is not None
        c.report = {
            **(c.report or {}),
            "transpose": summary["transpose"],
            "speaker": speaker_info,
            "convert": {k: v for k, v in summary.items() if k != "transpose"},
        }
