"""Thin task shells: one Celery task per pipeline stage, each calling the job runner."""

from __future__ import annotations

from app.core.names import Stage, task_name
from worker.celery_app import app, runtime
from worker.jobs.runner import run_stage


def _make(stage: Stage):
    @app.task(name=task_name(stage), acks_late=True, ignore_result=True)
    def _task(job_id: str, stage: str = stage.value) -> str:
        return run_stage(runtime(), job_id=job_id, stage=stage)

    return _task


TASKS = {s: _make(s) for s in Stage}
