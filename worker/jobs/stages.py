"""Stage name -> function. The runner fails a job whose stage this worker does not know
(an API newer than the worker) with a plain message."""

from __future__ import annotations

from collections.abc import Callable

from app.core.names import Stage
from worker.jobs import (
    convert,
    import_voice,
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

STAGES: dict[str, StageFn] = {
    Stage.ingest.value: ingest.run,
    Stage.separate.value: separate.run,
    Stage.slice.value: slice.run,
    Stage.preprocess.value: preprocess.run,
    Stage.train.value: train.run,
    Stage.convert.value: convert.run,
    Stage.mix.value: mix.run,
    Stage.report.value: report.run,
    Stage.import_voice.value: import_voice.run,
}
