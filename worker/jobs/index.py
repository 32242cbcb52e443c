"""Index stage: a voice's retrieval index from its reference songs, built after the fact.

Training builds the index from its own dataset at the end of the train stage. A voice
imported from a package or from so-vits-svc 5.0 files came without training data, so it
has none; neither does a voice whose index should reflect songs added since. This stage
(after ingest → separate → slice of the voice's songs) computes the content features of
the slices with the voice's *own* encoders (its stored feature settings), indexes them, and
stores the index as the voice's ``retrieval_index`` artifact and inside a new copy of its
package.

It changes nothing the voice converts with: the features go to their own folder
(``index-dataset``, never the training dataset), the voice's speaker vector and feature
settings are left as they are, and its package is replaced only by a copy with the index
added. A voice that had no pitch range (an import) gets the range of these songs, so
automatic transpose works for it.
"""

from __future__ import annotations

import shutil
from dataclasses import replace

from app.core import keys
from app.core.db.models import Voice
from app.core.names import ArtifactKind, Stage
from svc_core.errors import BadInputError
from svc_core.progress import check_stop
from svc_core.recipes import Features, preprocess_params
from worker.jobs.common import (
    find_artifact,
    safe_stem,
    snapshot,
    store_artifact,
    store_retrieval_index,
    temp_dir,
    voice_of,
    worker_device,
)
from worker.jobs.preprocess import coverage_of, voice_slices
from worker.jobs.runtime import JobHandle, Runtime

NO_MODEL = "The voice '{name}' has no model yet: train or import it before building its index."


def run(rt: Runtime, h: JobHandle) -> None:
    from svc_core.preprocess import build_dataset
    from svc_core.retrieval import build_voice_index, dataset_features, save_voice_index
    from svc_core.train.package import add_package_index

    job = snapshot(rt, h)
    voice_id = voice_of(job)
    with rt.scope() as s:
        voice = s.get(Voice, voice_id)
        assert voice is not None
        name = voice.name
        stored = (voice.settings or {}).get("features")
        report = dict(voice.report or {})
    package = find_artifact(
        rt, user_id=job.user_id, kind=ArtifactKind.voice_package, voice_id=voice_id
    )
    if package is None or not stored:
        raise BadInputError(NO_MODEL.format(name=name))
    features = Features.from_dict(stored)
    # the voice's own content encoders and F0 method; no speaker encoder (nothing here
    # conditions the model), and every slice is indexed (no validation split)
    params = preprocess_params(
        features, models_dir=rt.settings.models_dir, device=worker_device(), with_speaker=False
    )
    params = replace(params, valid_fraction=0.0)
    if not (params.content.ppg_checkpoint or params.content.vec_checkpoint):
        raise BadInputError(
            f"The voice '{name}' uses no content features, so there is nothing to index."
        )
    slices = voice_slices(rt, user_id=job.user_id, voice_id=voice_id)
    if not slices:
        raise BadInputError("There are no slices of singing to index.")
    h.progress("build_index", 0.0, f"index: content features of {len(slices)} slices", force=True)
    dataset = rt.storage.path(keys.voice(job.user_id, voice_id, "index-dataset"))
    result = build_dataset(
        slices,
        dataset,
        params,
        progress=lambda _s, f: h.progress("build_index", 0.85 * f),
        should_stop=h.should_stop,
        meta={"settings": features.to_dict(), "purpose": "retrieval index"},
    )
    check_stop(h.should_stop)
    h.progress("build_index", 0.88, "index: building the nearest-neighbour index", force=True)
    index = build_voice_index(dataset_features(dataset))
    safe = safe_stem(name)
    work = temp_dir(rt)
    try:
        local = save_voice_index(index, work / "voice.svcindex")
        check_stop(h.should_stop)
        h.progress("build_index", 0.95, "index: storing it with the voice", force=True)
        # the package first: a voice whose package has the index also has it as an artifact
        pkg = add_package_index(rt.storage.path(package.storage_key), local, work / "voice.zip")
        store_artifact(
            rt,
            job=job,
            local_file=pkg,
            key=keys.voice(job.user_id, voice_id, f"voice-{job.id[:8]}-indexed.zip"),
            kind=ArtifactKind.voice_package,
            stage=Stage.build_index,
            inputs=package.inputs_key,
            content_type="application/zip",
            filename=package.filename,
            meta=package.meta,
            voice_id=voice_id,
        )
        store_retrieval_index(
            rt,
            job=job,
            local_file=local,
            index=index,
            tag=job.id[:8],
            stage=Stage.build_index,
            filename=f"{safe}.svcindex",
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if not report.get("histogram"):  # an import: the range of these songs
        coverage = coverage_of(result, params.f0_params)
        keep = {k: report[k] for k in ("imported", "train") if k in report}
        with rt.scope() as s:
            voice = s.get(Voice, voice_id)
            assert voice is not None
            voice.report = {**coverage, **keep, "range_from": "index songs"}
    h.save_state(
        index={
            "slices": len(result.slices),
            "reused": result.reused,
            "skipped": result.skipped[:20],
            **index.info,
        }
    )
