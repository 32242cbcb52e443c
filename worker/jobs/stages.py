"""Stage name -> function. Stages that are not built yet fail the job with a clear message."""

from __future__ import annotations

from collections.abc import Callable

from svc_core.errors import StageNotAvailableError
from worker.jobs import ingest, mix
from worker.jobs.runtime import JobHandle, Runtime
from worker.names import Stage

StageFn = Callable[[Runtime, JobHandle], None]


def _not_available(stage: Stage) -> StageFn:
    def run(rt: Runtime, h: JobHandle) -> None:
        raise StageNotAvailableError(
            f"The '{stage.value}' stage is not available yet in this version of svc-studio. "
            "Your uploads and the results of earlier stages are kept; run the job again once "
            "the stage is available."
        )

    return run


STAGES: dict[str, StageFn] = {s.value: _not_available(s) for s in Stage}
STAGES[Stage.ingest.value] = ingest.run
STAGES[Stage.mix.value] = mix.run
