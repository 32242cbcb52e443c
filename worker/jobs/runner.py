"""Runs one stage of one job: claim, heartbeat, call the stage function, record the outcome."""

from __future__ import annotations

import logging

from sqlalchemy.exc import OperationalError

from app.core.db.models import Job
from app.core.jobstate import Transition
from app.core.storage import is_disk_full
from svc_core.errors import (
    AssetMissingError,
    BadInputError,
    Cancelled,
    IncompatibleError,
    StageNotAvailableError,
    SvcError,
)
from worker.jobs import runtime as rtm
from worker.jobs.stages import STAGES

log = logging.getLogger(__name__)

# Errors that say something about the input or the installation: retrying cannot help.
PERMANENT = (BadInputError, StageNotAvailableError, AssetMissingError, IncompatibleError, SvcError)
TRANSIENT = (OperationalError, ConnectionError, TimeoutError)


def run_stage(rt: rtm.Runtime, *, job_id: str, stage: str) -> str:
    """Run ``stage`` of ``job_id`` if it is claimable. Returns what happened, for logs/tests."""
    if not rtm.claim(rt, job_id=job_id, stage=stage):
        return "not-claimed"
    with rt.scope() as s:
        job = s.get(Job, job_id)
        assert job is not None
        stages = list(job.stages)
        attempts = job.attempts
        max_attempts = job.max_attempts
    h = rtm.JobHandle(
        rt=rt, job_id=job_id, stage=stage, stage_index=stages.index(stage), n_stages=len(stages)
    )
    h.start_heartbeat()
    try:
        fn = STAGES.get(stage)
        if fn is None:
            raise StageNotAvailableError(
                f"The '{stage}' stage is not available in this worker's version of "
                "svc-studio: update the worker."
            )
        fn(rt, h)
        if h.should_stop():
            raise Cancelled("stopped")
        h.progress(stage, 1.0, force=True)
        done, nxt = rtm.complete_stage(rt, h)
    except Cancelled:
        return _stopped(rt, h)
    except rtm.LostJob:
        return "lost"
    except PERMANENT as exc:
        rtm.fail(rt, job_id=job_id, error=str(exc), tb=rtm.format_tb(exc))
        return "failed"
    except MemoryError as exc:
        rtm.fail(
            rt,
            job_id=job_id,
            error="Out of memory while running stage "
            f"'{stage}'. Try a smaller batch size or a shorter input.",
            tb=rtm.format_tb(exc),
        )
        return "failed"
    except TRANSIENT as exc:
        log.warning("transient error in job %s stage %s: %s", job_id, stage, exc)
        if attempts < max_attempts and rtm.requeue(
            rt, job_id=job_id, reason=f"{stage}: retrying after a temporary error"
        ):
            rt.dispatch(job_id, stage, countdown=min(60, 2**attempts))
            return "retry"
        rtm.fail(
            rt, job_id=job_id, error=f"Temporary error persisted: {exc}", tb=rtm.format_tb(exc)
        )
        return "failed"
    except OSError as exc:
        if not is_disk_full(exc):
            return _crashed(rt, job_id, stage, exc)
        log.error("job %s stage %s: storage full: %s", job_id, stage, exc)
        rtm.fail(
            rt,
            job_id=job_id,
            error=f"The server ran out of storage space during stage '{stage}' ({exc.strerror}). "
            "Free some space (or ask the administrator to), then start the job again.",
            tb=rtm.format_tb(exc),
        )
        return "failed"
    except Exception as exc:  # noqa: BLE001 - never crash the worker; record and fail the job
        return _crashed(rt, job_id, stage, exc)
    finally:
        h.stop_heartbeat()
    if nxt is not None:
        rt.dispatch(job_id, nxt)
        return "advanced"
    return "cancelled" if done is Transition.stop else "succeeded"


def _crashed(rt: rtm.Runtime, job_id: str, stage: str, exc: BaseException) -> str:
    log.exception("job %s stage %s crashed", job_id, stage)
    rtm.fail(
        rt,
        job_id=job_id,
        error=f"Internal error in stage '{stage}': {type(exc).__name__}: {exc}",
        tb=rtm.format_tb(exc),
    )
    return "failed"


def _stopped(rt: rtm.Runtime, h: rtm.JobHandle) -> str:
    if h.lost:
        return "lost"
    if h.cancel_requested:
        rtm.stop(rt, job_id=h.job_id)
        return "cancelled"
    # worker shutting down: hand the job back so another worker resumes it
    if rtm.requeue(rt, job_id=h.job_id, reason=f"{h.stage}: worker stopped, resuming elsewhere"):
        rt.dispatch(h.job_id, h.stage)
    return "requeued"
