"""Import stage: an uploaded voice package → a ready voice (its package and ``.spk.npy``).

The package is opened with the real loader, so a damaged file, an unknown format version or
weights that do not fit their config fail the job with a plain message.
"""

from __future__ import annotations

import shutil

from app.db.models import Voice
from svc_core.errors import BadInputError
from worker.jobs.common import snapshot, store_artifact, temp_dir
from worker.jobs.runtime import JobHandle, Runtime


def run(rt: Runtime, h: JobHandle) -> None:
    from svc_core.model.inference import VoiceModel
    from svc_core.model.package import load_voice_package
    from svc_core.speaker import save_spk

    job = snapshot(rt, h)
    key = job.params.get("storage_key")
    if not job.voice_id or not key or not rt.storage.exists(key):
        raise BadInputError("The uploaded voice package is missing: upload it again.")
    h.progress("import_voice", 0.1, "import: checking the voice package", force=True)
    pkg = load_voice_package(rt.storage.path(key))
    VoiceModel(pkg.config, pkg.generator_state, pkg.speaker)  # the weights fit the config
    meta = pkg.meta
    features = dict(meta.get("features") or {})
    if not features.get("f0_method") or not (
        features.get("ppg_model") or features.get("vec_model")
    ):
        raise BadInputError(
            "This voice package does not say which F0 method and content encoders it was "
            "trained with, so it cannot be used for conversion."
        )
    h.progress("import_voice", 0.6)
    base = f"u/{job.user_id}/voices/{job.voice_id}"
    work = temp_dir(rt)
    try:
        pkg_copy = work / "voice.zip"
        shutil.copyfile(rt.storage.path(key), pkg_copy)
        filename = str(job.params.get("filename") or "voice.zip")
        store_artifact(
            rt,
            job=job,
            local_file=pkg_copy,
            key=f"{base}/voice-imported.zip",
            kind="voice_package",
            stage="import_voice",
            inputs=job.params.get("sha256"),
            content_type="application/zip",
            filename=filename,
            meta=meta.get("train") or {},
            voice_id=job.voice_id,
        )
        spk = save_spk(work / "voice.spk.npy", pkg.speaker)
        store_artifact(
            rt,
            job=job,
            local_file=spk,
            key=f"{base}/imported.spk.npy",
            kind="spk",
            stage="import_voice",
            inputs=None,
            content_type="application/octet-stream",
            filename=filename.rsplit(".", 1)[0].removesuffix(".svcvoice") + ".spk.npy",
            voice_id=job.voice_id,
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    rt.storage.delete(key)
    with rt.scope() as s:
        voice = s.get(Voice, job.voice_id)
        assert voice is not None
        voice.settings = {**(voice.settings or {}), "features": features, "imported": True}
        voice.report = {
            "imported": True,
            "histogram": meta.get("pitch_histogram") or [],
            "hop_s": meta.get("pitch_hop_s") or 0.01,
            "train": meta.get("train"),
            "warnings": []
            if meta.get("pitch_histogram")
            else ["The package has no pitch range: automatic transpose is not available."],
        }
