"""Task names, queues, stages and pipelines, shared by the API (which sends) and the workers
(which run). No Celery or engine imports here, so the web process stays light."""

from __future__ import annotations

import enum


class Queue(enum.StrEnum):
    cpu = "cpu"
    gpu = "gpu"


class Stage(enum.StrEnum):
    ingest = "ingest"
    separate = "separate"
    slice = "slice"
    preprocess = "preprocess"
    train = "train"
    convert = "convert"
    mix = "mix"
    report = "report"
    import_voice = "import_voice"
    fetch_models = "fetch_models"
    build_index = "build_index"


STAGE_QUEUE: dict[Stage, Queue] = {
    Stage.ingest: Queue.cpu,
    Stage.slice: Queue.cpu,
    Stage.mix: Queue.cpu,
    Stage.report: Queue.cpu,
    Stage.import_voice: Queue.cpu,
    Stage.fetch_models: Queue.cpu,
    Stage.separate: Queue.gpu,
    Stage.preprocess: Queue.gpu,
    Stage.train: Queue.gpu,
    Stage.convert: Queue.gpu,
    Stage.build_index: Queue.gpu,
}


class JobKind(enum.StrEnum):
    ingest = "ingest"  # decode uploaded tracks
    voice = "voice"  # voice training pipeline
    conversion = "conversion"  # conversion pipeline
    remix = "remix"  # mix stored converted vocals again with other settings
    voice_import = "voice_import"  # check an uploaded voice package, make it a ready voice
    model_download = "model_download"  # download pretrained models into the models folder
    voice_index = "voice_index"  # (re)build a voice's retrieval index from its reference songs


PIPELINES: dict[JobKind, tuple[Stage, ...]] = {
    JobKind.ingest: (Stage.ingest,),
    JobKind.voice: (Stage.ingest, Stage.separate, Stage.slice, Stage.preprocess, Stage.train),
    JobKind.conversion: (Stage.ingest, Stage.separate, Stage.convert, Stage.mix, Stage.report),
    JobKind.remix: (Stage.mix,),
    JobKind.voice_import: (Stage.import_voice,),
    JobKind.model_download: (Stage.fetch_models,),
    JobKind.voice_index: (Stage.ingest, Stage.separate, Stage.slice, Stage.build_index),
}


def task_name(stage: Stage | str) -> str:
    return f"svc.stage.{Stage(stage).value}"


def queue_for(stage: Stage | str) -> str:
    return STAGE_QUEUE[Stage(stage)].value


class ArtifactKind(enum.StrEnum):
    """What a stored file is. Tracks: ``decoded`` (the upload as 44.1 kHz WAV), the stems
    of separation (``vocals``, ``instrumental``, ``reverb``, ``backing_vocals``,
    ``vocals_before_second_pass``), ``slices``. Voices: ``spk`` (the model's speaker
    vector), ``spk_judge`` (the GE2E centroid the quality report uses), ``voice_package``,
    ``retrieval_index``, ``metrics``, ``preview``. Conversions: ``source_f0``,
    ``converted_vocals_model_rate``, ``converted_vocals``, ``mix``."""

    decoded = "decoded"
    vocals = "vocals"
    instrumental = "instrumental"
    reverb = "reverb"
    backing_vocals = "backing_vocals"
    vocals_before_second_pass = "vocals_before_second_pass"
    slices = "slices"
    spk = "spk"
    spk_judge = "spk_judge"
    voice_package = "voice_package"
    retrieval_index = "retrieval_index"
    metrics = "metrics"
    preview = "preview"
    source_f0 = "source_f0"
    converted_vocals_model_rate = "converted_vocals_model_rate"
    converted_vocals = "converted_vocals"
    mix = "mix"
