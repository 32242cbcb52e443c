"""The job state machine against real databases: claims, stage advance, failure messages,
cancellation, the stale-heartbeat watchdog. Stage functions here are small real functions;
the broker is replaced by a list of sends (the integration tests use a real one)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import update

from app.core import jobstate
from app.core.db import crud
from app.core.db.models import Job, utcnow
from svc_core.errors import BadInputError
from svc_core.progress import check_stop
from worker.jobs import runtime as rtm
from worker.jobs.runner import run_stage
from worker.jobs.stages import STAGES


def _job(rt, stages=("ingest", "separate"), kind="voice") -> str:
    with rt.scope() as s:
        user = crud.create_user(s, name=f"u-{len(rt.sent)}-{utcnow().timestamp()}")
        job = jobstate.create(s, user_id=user.id, kind=kind, stages=list(stages))
        return job.id


def _get(rt, job_id) -> Job:
    with rt.scope() as s:
        job = s.get(Job, job_id)
        s.expunge(job)
        return job


@pytest.fixture
def stage_fn(monkeypatch):
    """Install a stage function under the name 'ingest' for one test."""

    def install(fn):
        monkeypatch.setitem(STAGES, "ingest", fn)

    return install


def test_claim_is_exclusive(rt):
    job_id = _job(rt)
    assert rtm.claim(rt, job_id=job_id, stage="ingest") is True
    assert rtm.claim(rt, job_id=job_id, stage="ingest") is False
    job = _get(rt, job_id)
    assert job.status == "running" and job.attempts == 1 and job.worker == rtm.worker_name()


def test_claim_refuses_wrong_stage_and_unknown_job(rt):
    job_id = _job(rt)
    assert rtm.claim(rt, job_id=job_id, stage="separate") is False
    assert rtm.claim(rt, job_id="no-such-job", stage="ingest") is False


def test_stage_success_advances_then_unknown_stage_fails_clearly(rt, stage_fn):
    seen = []

    def ok(rt_, h):
        for i in range(5):
            h.progress("ingest", i / 5)
        seen.append(h.job_id)

    stage_fn(ok)
    job_id = _job(rt)
    with rt.scope() as s:  # a stage of a newer API than this worker
        s.execute(update(Job).where(Job.id == job_id).values(stages=["ingest", "sing-along"]))
    assert run_stage(rt, job_id=job_id, stage="ingest") == "advanced"
    assert seen == [job_id]
    job = _get(rt, job_id)
    assert job.status == "queued" and job.stage == "sing-along"
    assert job.progress == pytest.approx(0.5)
    assert rt.sent == [(job_id, "sing-along")]
    # a stage this worker does not know: the job fails with a plain message, never pretends
    assert run_stage(rt, job_id=job_id, stage="sing-along") == "failed"
    job = _get(rt, job_id)
    assert job.status == "failed"
    assert "not available" in job.error and "sing-along" in job.error
    assert job.finished_at is not None


def test_last_stage_success_finishes_job(rt, stage_fn):
    stage_fn(lambda rt_, h: None)
    job_id = _job(rt, stages=("ingest",), kind="ingest")
    assert run_stage(rt, job_id=job_id, stage="ingest") == "succeeded"
    job = _get(rt, job_id)
    assert job.status == "succeeded" and job.progress == 1.0 and job.eta_s is None


def test_bad_input_fails_at_once_with_message_and_traceback(rt, stage_fn):
    def bad(rt_, h):
        raise BadInputError("song.mp3: the file is silent")

    stage_fn(bad)
    job_id = _job(rt)
    assert run_stage(rt, job_id=job_id, stage="ingest") == "failed"
    job = _get(rt, job_id)
    assert job.error == "song.mp3: the file is silent"
    assert "BadInputError" in job.traceback
    assert rt.sent == []  # not retried


def test_unexpected_crash_fails_job_not_worker(rt, stage_fn):
    def crash(rt_, h):
        return 1 / 0

    stage_fn(crash)
    job_id = _job(rt)
    assert run_stage(rt, job_id=job_id, stage="ingest") == "failed"
    job = _get(rt, job_id)
    assert job.error.startswith("Internal error in stage 'ingest': ZeroDivisionError")


def test_cancel_running_job(rt, stage_fn):
    def cancellable(rt_, h):
        with rt_.scope() as s:
            s.execute(update(Job).where(Job.id == h.job_id).values(cancel_requested=True))
        for _ in range(3):
            check_stop(h.should_stop)

    stage_fn(cancellable)
    job_id = _job(rt)
    assert run_stage(rt, job_id=job_id, stage="ingest") == "cancelled"
    job = _get(rt, job_id)
    assert job.status == "cancelled" and rt.sent == []


def test_cancel_queued_job_then_delivery_is_ignored(rt, stage_fn):
    stage_fn(lambda rt_, h: pytest.fail("a cancelled job must not run"))
    job_id = _job(rt)
    with rt.scope() as s:
        job = s.get(Job, job_id)
        assert jobstate.cancel(s, job=job) == "cancelled"
    assert run_stage(rt, job_id=job_id, stage="ingest") == "not-claimed"
    assert _get(rt, job_id).status == "cancelled"


def test_heartbeat_keeps_a_slow_stage_alive(rt, stage_fn):
    import time

    def slow(rt_, h):
        time.sleep(1.5)  # longer than the 1 s timeout, without any progress call
        assert rtm.requeue_stale(rt_) == []

    stage_fn(slow)
    job_id = _job(rt, stages=("ingest",), kind="ingest")
    assert run_stage(rt, job_id=job_id, stage="ingest") == "succeeded"


def test_watchdog_requeues_then_fails_stale_jobs(rt):
    job_id = _job(rt)
    old = utcnow() - timedelta(minutes=5)
    for attempt in range(1, 4):
        assert rtm.claim(rt, job_id=job_id, stage="ingest")
        with rt.scope() as s:  # the worker died: its heartbeat stops
            s.execute(update(Job).where(Job.id == job_id).values(heartbeat_at=old))
        actions = rtm.requeue_stale(rt)
        if attempt < 3:
            assert actions == [(job_id, "requeued")]
            assert _get(rt, job_id).status == "queued"
            assert rt.sent[-1] == (job_id, "ingest")
        else:
            assert actions == [(job_id, "failed")]
    job = _get(rt, job_id)
    assert job.status == "failed" and "stopped responding 3 times" in job.error


def test_lost_job_is_not_overwritten(rt, stage_fn):
    def taken_over(rt_, h):
        with rt_.scope() as s:  # the watchdog gave the job to another worker meanwhile
            s.execute(update(Job).where(Job.id == h.job_id).values(worker="other:1"))
        h.beat()
        check_stop(h.should_stop)

    stage_fn(taken_over)
    job_id = _job(rt)
    assert run_stage(rt, job_id=job_id, stage="ingest") == "lost"
    job = _get(rt, job_id)
    assert job.status == "running" and job.worker == "other:1"


def test_a_stage_the_broker_refuses_stays_queued_until_the_sweep_sends_it(rt, stage_fn):
    """The broker is down when a stage finishes: the job is not lost or failed; it waits,
    unsent, and the sweep sends it (only after the grace period, only once)."""
    stage_fn(lambda rt_, h: None)
    job_id = _job(rt)
    up = rt.send_stage

    def down(job_id, stage, countdown=None):
        raise ConnectionRefusedError("Error 111 connecting to broker")

    rt.send_stage = down
    assert run_stage(rt, job_id=job_id, stage="ingest") == "advanced"
    job = _get(rt, job_id)
    assert job.status == "queued" and job.stage == "separate" and job.dispatched_at is None
    assert "broker is unreachable" in job.message
    assert rtm.redispatch_unsent(rt) == []  # broker still down, and within the grace period

    rt.send_stage = up
    assert rtm.redispatch_unsent(rt) == []  # within the grace period: not yet
    with rt.scope() as s:
        s.execute(
            update(Job).where(Job.id == job_id).values(queued_at=utcnow() - timedelta(minutes=5))
        )
    assert rtm.redispatch_unsent(rt) == [job_id]
    assert rt.sent[-1] == (job_id, "separate")
    job = _get(rt, job_id)
    assert job.dispatched_at is not None and job.message == "separate: waiting for a worker"
    assert rtm.redispatch_unsent(rt) == []  # sent once


def test_a_stage_the_broker_accepts_is_marked_sent(rt, stage_fn):
    stage_fn(lambda rt_, h: None)
    job_id = _job(rt)
    assert run_stage(rt, job_id=job_id, stage="ingest") == "advanced"
    assert rt.sent == [(job_id, "separate")]
    assert _get(rt, job_id).dispatched_at is not None
    with rt.scope() as s:
        s.execute(
            update(Job).where(Job.id == job_id).values(queued_at=utcnow() - timedelta(minutes=5))
        )
    assert rtm.redispatch_unsent(rt) == []


def test_progress_never_moves_back_within_a_stage(rt, stage_fn):
    seen = []

    def fn(rt_, h):
        h.progress("ingest", 0.6, force=True)
        h.progress("ingest", 0.3, "ingest: a later sub-step that starts its own count", force=True)
        job = _get(rt, h.job_id)
        seen.append((job.stage_progress, job.message))

    stage_fn(fn)
    job_id = _job(rt)
    assert run_stage(rt, job_id=job_id, stage="ingest") == "advanced"
    assert seen == [(0.6, "ingest: a later sub-step that starts its own count")]


def test_full_disk_fails_the_job_in_plain_words_other_os_errors_are_internal(rt, stage_fn):
    import errno

    def full(rt_, h):
        raise OSError(errno.ENOSPC, "No space left on device")

    stage_fn(full)
    job_id = _job(rt)
    assert run_stage(rt, job_id=job_id, stage="ingest") == "failed"
    job = _get(rt, job_id)
    assert job.status == "failed"
    assert job.error.startswith("The server ran out of storage space during stage 'ingest'")
    assert "No space left on device" in job.error and "OSError" in job.traceback

    def denied(rt_, h):
        raise PermissionError(errno.EACCES, "Permission denied")

    stage_fn(denied)
    job_id = _job(rt)
    assert run_stage(rt, job_id=job_id, stage="ingest") == "failed"
    assert _get(rt, job_id).error.startswith("Internal error in stage 'ingest': PermissionError")

    def refused(rt_, h):  # an OSError too, but a temporary one: retried, not failed
        raise ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused")

    stage_fn(refused)
    job_id = _job(rt)
    assert run_stage(rt, job_id=job_id, stage="ingest") == "retry"
