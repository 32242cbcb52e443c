"""Import stage: an uploaded voice package, or a singer's so-vits-svc 5.0 model with its
``.spk.npy`` (and optional hparams YAML) → a ready voice (its package and ``.spk.npy``).

Everything is opened with the real loaders, so a damaged file, an unknown format version or
weights that do not fit their sizes fail the job with a plain message; the uploads are
removed only after the voice's artifacts are stored.

Uploads are hostile until checked: every zip's directory (the package, its weights, its
retrieval index, a 5.0 ``.pth``) is checked against size, total and ratio caps before a
member is read, YAML is capped before it is parsed (:mod:`svc_core.archive`), the model is
first built on torch's meta device, and what the package's meta puts into the voice's
stored report is checked for type and size (``checked_report_meta``). Everything is checked
before anything is stored, and the job stops between the steps (and between the chunks of
large reads) when it is cancelled.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from app.core import keys
from app.core.db.models import Voice
from app.core.names import ArtifactKind, Stage
from app.core.params import VoiceImportParams
from svc_core.errors import BadInputError
from svc_core.progress import check_stop
from worker.jobs.common import (
    snapshot,
    store_artifact,
    store_retrieval_index,
    temp_dir,
    voice_of,
)
from worker.jobs.runtime import JobHandle, Runtime

NO_RANGE = (
    "No pitch range came with this voice (no training data): automatic transpose is not "
    "available until its retrieval index is built from a few of the singer's songs, which "
    "also measures their range."
)


def run(rt: Runtime, h: JobHandle) -> None:
    job = snapshot(rt, h)
    p: VoiceImportParams = job.params
    if not job.voice_id or not rt.storage.exists(p.storage_key):
        raise BadInputError("The uploaded voice package is missing: upload it again.")
    uploads = [p.storage_key]
    work = temp_dir(rt)
    try:
        if p.format == "sovits5":
            h.progress("import_voice", 0.1, "import: checking the 5.0 model", force=True)
            package = _from_sovits5(rt, h, p, work)
            uploads += [k for k in (p.speaker_key, p.hparams_key) if k]
        else:
            h.progress("import_voice", 0.1, "import: checking the voice package", force=True)
            package = rt.storage.path(p.storage_key)
        _import_package(rt, h, job, package, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    for k in uploads:
        rt.storage.delete(k)


def _from_sovits5(rt: Runtime, h: JobHandle, p: VoiceImportParams, work: Path) -> Path:
    """Build a voice package from the uploaded 5.0 model, speaker vector and hparams."""
    from svc_core.train.package import import_sovits5_voice

    if not p.speaker_key or not rt.storage.exists(p.speaker_key):
        raise BadInputError("The uploaded speaker vector is missing: upload it again.")
    kwargs = {"f0_method": p.f0_method} if p.f0_method else {}
    return import_sovits5_voice(
        rt.storage.path(p.storage_key),
        rt.storage.path(p.speaker_key),
        work / "voice.zip",
        hparams=rt.storage.path(p.hparams_key) if p.hparams_key else None,
        meta={"imported_from": p.filename},
        should_stop=h.should_stop,
        **kwargs,
    )


def _import_package(rt: Runtime, h: JobHandle, job, package: Path, work: Path) -> None:
    from svc_core.model.package import (
        check_package_model,
        checked_report_meta,
        load_voice_package,
    )
    from svc_core.speaker import save_spk

    p: VoiceImportParams = job.params
    # what messages call the file: the name it was uploaded with (a 5.0 model's package is
    # built here and called by its own name)
    name = (p.filename if p.format == "package" and p.filename else Path(package).name)[:100]
    check_stop(h.should_stop)
    pkg = load_voice_package(package, should_stop=h.should_stop, name=name)
    report = checked_report_meta(pkg.meta, name)  # bounded before anything is stored
    features = report["features"]
    if not features.get("f0_method") or not (
        features.get("ppg_model") or features.get("vec_model")
    ):
        raise BadInputError(
            "This voice package does not say which F0 method and content encoders it was "
            "trained with, so it cannot be used for conversion."
        )
    check_stop(h.should_stop)
    h.progress("import_voice", 0.3, "import: checking the weights")
    check_package_model(pkg, name)  # the weights fit the config (meta device first)
    check_stop(h.should_stop)
    h.progress("import_voice", 0.5, "import: checking the retrieval index")
    index = _package_index(h, package, work, name)  # checked before anything is stored
    check_stop(h.should_stop)
    h.progress("import_voice", 0.6)
    voice_id = voice_of(job)
    pkg_copy = work / "voice-copy.zip"
    shutil.copyfile(package, pkg_copy)
    filename = job.params.filename or "voice.zip"
    if not filename.lower().endswith(".zip"):
        filename = filename.rsplit(".", 1)[0] + ".svcvoice.zip"
    stem = filename.rsplit(".", 1)[0].removesuffix(".svcvoice")
    store_artifact(
        rt,
        job=job,
        local_file=pkg_copy,
        key=keys.voice(job.user_id, voice_id, "voice-imported.zip"),
        kind=ArtifactKind.voice_package,
        stage=Stage.import_voice,
        inputs=job.params.sha256,
        content_type="application/zip",
        filename=filename,
        meta=report["train"] or {},
        voice_id=job.voice_id,
    )
    spk = save_spk(work / "voice.spk.npy", pkg.speaker)
    store_artifact(
        rt,
        job=job,
        local_file=spk,
        key=keys.voice(job.user_id, voice_id, "imported.spk.npy"),
        kind=ArtifactKind.spk,
        stage=Stage.import_voice,
        inputs=None,
        content_type="application/octet-stream",
        filename=stem + ".spk.npy",
        meta={"encoder": features.get("speaker_encoder", "ge2e")},
        voice_id=job.voice_id,
    )
    if index is not None:
        local, loaded = index
        store_retrieval_index(
            rt,
            job=job,
            local_file=local,
            index=loaded,
            tag="imported",
            stage=Stage.import_voice,
            filename=stem + ".svcindex",
        )
    histogram = report["pitch_histogram"]
    with rt.scope() as s:
        voice = s.get(Voice, job.voice_id)
        assert voice is not None
        voice.settings = {**(voice.settings or {}), "features": features, "imported": True}
        voice.report = {
            "imported": True,
            "histogram": histogram,
            "hop_s": report["pitch_hop_s"],
            "train": report["train"],
            "warnings": [] if histogram else [NO_RANGE],
        }


def _package_index(h: JobHandle, package: Path, work: Path, name: str):
    """A package's retrieval index (if it has one), streamed out and checked:
    ``(local file, loaded index)`` or None."""
    from svc_core.model.package import copy_package_index
    from svc_core.retrieval import load_voice_index

    local = copy_package_index(
        package, work / "voice.svcindex", should_stop=h.should_stop, name=name
    )
    if local is None:
        return None
    check_stop(h.should_stop)
    return local, load_voice_index(local, should_stop=h.should_stop)  # plain errors
