"""Stage name -> function. The runner fails a job whose stage this worker does not know
(an API newer than the worker) with a plain message."""

from __future__ import annotations

from collections.abc import Callable

from app.core.names import Stage
from worker.jobs import (
    convert,
    fetch_models,
    import_voice,
    index,
    ingest,
    mix,
    preprocess,
    report,
    separate,
    slice,
    train,
)
from worker.jobs.runtime import JobHandle, Runtime

StageFn = Callable[[Runtime, JobHandle], None]

STAGES: dict[Stage | str, StageFn] = {
    Stage.ingest: ingest.run,
    Stage.separate: separate.run,
    Stage.slice: slice.run,
    Stage.preprocess: preprocess.run,
    Stage.train: train.run,
    Stage.convert: convert.run,
    Stage.mix: mix.run,
    Stage.report: report.run,
    Stage.import_voice: import_voice.run,
    Stage.fetch_models: fetch_models.run,
    Stage.build_index: index.run,
}
