"""The job state machine (app/core/jobstate.py) tested directly, on both databases: every
transition, tried from every status, changes the job exactly when the table allows it and
leaves it untouched otherwise; a worker's writes need its own name; a job's voice follows."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy.orm import Session

from app.core import jobstate
from app.core.db import crud
from app.core.db.models import Artifact, Job, JobStatus, Voice, VoiceStatus, utcnow
from app.core.db.session import get_sessionmaker
from app.core.names import ArtifactKind, JobKind, Stage

T = jobstate.Transition
W = "worker-1"
OLD = timedelta(hours=1)


def _recover_row(job: Job, *, cancel: bool, attempts: int) -> tuple:
    return (job.id, job.stage, attempts, 3, cancel)


# transition -> (how the job is set up, the call; returns whether the transition happened)
CALLS: dict[T, tuple[dict[str, Any], Callable[[Session, Job], bool]]] = {
    T.dispatch: ({}, lambda s, j: jobstate.mark_dispatched(s, job_id=j.id, stage="ingest")),
    T.undispatch: ({}, lambda s, j: jobstate.mark_undispatched(s, job_id=j.id, stage="ingest")),
    T.claim: ({}, lambda s, j: jobstate.claim(s, job_id=j.id, stage="ingest", worker="w2")),
    T.beat: ({}, lambda s, j: jobstate.beat(s, job_id=j.id, worker=W)),
    T.progress: (
        {},
        lambda s, j: jobstate.progress(
            s, job_id=j.id, worker=W, stage_progress=0.5, progress=0.25, eta_s=3.0
        ),
    ),
    T.request_cancel: ({}, lambda s, j: jobstate.request_cancel(s, job_id=j.id)),
    T.cancel_queued: ({}, lambda s, j: jobstate.cancel_queued(s, job_id=j.id)),
    T.advance: (
        {},
        lambda s, j: (
            jobstate.complete_stage(s, job_id=j.id, stage="ingest", worker=W)[0] is T.advance
        ),
    ),
    T.succeed: (
        {"stage": Stage.separate},
        lambda s, j: (
            jobstate.complete_stage(s, job_id=j.id, stage="separate", worker=W)[0] is T.succeed
        ),
    ),
    T.fail: ({}, lambda s, j: jobstate.fail(s, job_id=j.id, worker=W, error="bad input")),
    T.stop: ({}, lambda s, j: jobstate.stop(s, job_id=j.id, worker=W)),
    T.requeue: ({}, lambda s, j: jobstate.requeue(s, job_id=j.id, worker=W, reason="shutdown")),
    T.recover: (
        {},
        lambda s, j: (
            jobstate.recover(s, _recover_row(j, cancel=False, attempts=1), beat_before=utcnow())
            is T.recover
        ),
    ),
    T.give_up: (
        {},
        lambda s, j: (
            jobstate.recover(s, _recover_row(j, cancel=False, attempts=3), beat_before=utcnow())
            is T.give_up
        ),
    ),
    T.reap_cancelled: (
        {"cancel_requested": True},
        lambda s, j: (
            jobstate.recover(s, _recover_row(j, cancel=True, attempts=1), beat_before=utcnow())
            is T.reap_cancelled
        ),
    ),
    T.retry: ({"stage": Stage.separate}, lambda s, j: jobstate.retry(s, job=j)),
}


def test_every_transition_has_a_table_entry_and_a_case_here():
    assert set(jobstate.TRANSITIONS) == set(T)
    assert set(CALLS) == set(T) - {T.create}
    assert jobstate.TRANSITIONS[T.create] == (frozenset(), JobStatus.queued)
    # nothing leaves a finished job except a retry
    for t, (sources, _) in jobstate.TRANSITIONS.items():
        if t is not T.retry:
            assert JobStatus.succeeded not in sources and not (sources & jobstate.RETRYABLE), t


def test_the_table_is_the_documented_diagram():
    """The diagram users and operators rely on, written out: a change here is a change of
    behaviour (e.g. a finished job must never run again except through retry)."""
    q, r, ok, f, c = (JobStatus.queued, JobStatus.running, JobStatus.succeeded,
                      JobStatus.failed, JobStatus.cancelled)  # fmt: skip
    edges = {
        (t, src, dst)
        for t, (sources, dst) in jobstate.TRANSITIONS.items()
        for src in sources or {None}
    }
    assert edges == {
        (T.create, None, q),
        (T.dispatch, q, q),
        (T.undispatch, q, q),
        (T.claim, q, r),
        (T.beat, r, r),
        (T.progress, r, r),
        (T.request_cancel, r, r),
        (T.cancel_queued, q, c),
        (T.advance, r, q),
        (T.succeed, r, ok),
        (T.fail, r, f),
        (T.stop, r, c),
        (T.requeue, r, q),
        (T.recover, r, q),
        (T.give_up, r, f),
        (T.reap_cancelled, r, c),
        (T.retry, f, q),
        (T.retry, c, q),
    }


def _job(s: Session, user_id: str, voice_id: str, status: JobStatus, **setup: Any) -> Job:
    job = jobstate.create(
        s,
        user_id=user_id,
        kind=JobKind.voice,
        stages=(Stage.ingest, Stage.separate),
        voice_id=voice_id,
    )
    job.status = status
    job.worker = W
    job.heartbeat_at = utcnow() - OLD
    job.dispatched_at = None
    for k, v in setup.items():
        setattr(job, k, v)
    s.flush()
    return job


def test_each_transition_happens_from_exactly_its_source_statuses(db_url):
    session = get_sessionmaker(db_url)()
    user = crud.create_user(session, name="machine")
    voice = crud.create_voice(session, user_id=user.id, name="v")
    wrong: list[str] = []
    for t, (setup, call) in CALLS.items():
        sources, target = jobstate.TRANSITIONS[t]
        for status in JobStatus:
            job = _job(session, user.id, voice.id, status, **setup)
            happened = bool(call(session, job))
            session.flush()
            session.expire_all()
            after = session.get(Job, job.id)
            assert after is not None
            allowed = status in sources
            if happened != allowed or after.status != (target if allowed else status):
                wrong.append(f"{t} from {status}: happened={happened}, now {after.status}")
    session.rollback()
    session.close()
    assert wrong == []


def test_a_worker_writes_only_its_own_job(db_url):
    with get_sessionmaker(db_url)() as s:
        user = crud.create_user(s, name="owner")
        voice = crud.create_voice(s, user_id=user.id, name="v")
        job = _job(s, user.id, voice.id, JobStatus.running)
        other = "worker-2"
        assert not jobstate.beat(s, job_id=job.id, worker=other)
        assert not jobstate.progress(
            s, job_id=job.id, worker=other, stage_progress=1, progress=1, eta_s=None
        )
        assert jobstate.complete_stage(s, job_id=job.id, stage="ingest", worker=other) == (
            None,
            None,
        )
        assert not jobstate.fail(s, job_id=job.id, worker=other, error="x")
        assert not jobstate.requeue(s, job_id=job.id, worker=other, reason="x")
        # the owner, at another stage than the job's, cannot complete it either
        assert not jobstate.complete_stage(s, job_id=job.id, stage="separate", worker=W)[0]
        s.refresh(job)
        assert job.status == JobStatus.running and job.stage == Stage.ingest


def test_a_claim_needs_the_stage_and_no_cancel_and_counts_the_attempt(db_url):
    with get_sessionmaker(db_url)() as s:
        user = crud.create_user(s, name="claims")
        voice = crud.create_voice(s, user_id=user.id, name="v")
        job = _job(s, user.id, voice.id, JobStatus.queued)
        assert not jobstate.claim(s, job_id=job.id, stage="separate", worker=W)
        assert jobstate.claim(s, job_id=job.id, stage="ingest", worker=W)
        s.refresh(job)
        assert job.attempts == 1 and job.worker == W
        cancelled = _job(s, user.id, voice.id, JobStatus.queued, cancel_requested=True)
        assert not jobstate.claim(s, job_id=cancelled.id, stage="ingest", worker=W)


def test_the_voice_follows_its_training_job(db_url):
    with get_sessionmaker(db_url)() as s:
        user = crud.create_user(s, name="voices")
        voice = crud.create_voice(s, user_id=user.id, name="v")

        def voice_status() -> VoiceStatus:
            s.expire_all()
            v = s.get(Voice, voice.id)
            assert v is not None
            return v.status

        job = _job(s, user.id, voice.id, JobStatus.queued)
        assert jobstate.claim(s, job_id=job.id, stage="ingest", worker=W)
        assert voice_status() == VoiceStatus.training
        assert jobstate.complete_stage(s, job_id=job.id, stage="ingest", worker=W) == (
            T.advance,
            "separate",
        )
        assert voice_status() == VoiceStatus.training
        assert jobstate.claim(s, job_id=job.id, stage="separate", worker=W)
        assert jobstate.complete_stage(s, job_id=job.id, stage="separate", worker=W) == (
            T.succeed,
            None,
        )
        assert voice_status() == VoiceStatus.ready

        failing = _job(s, user.id, voice.id, JobStatus.running)
        assert jobstate.fail(s, job_id=failing.id, worker=W, error="no singing")
        assert voice_status() == VoiceStatus.failed

        stopped = _job(s, user.id, voice.id, JobStatus.running)
        assert jobstate.stop(s, job_id=stopped.id, worker=W)
        assert voice_status() == VoiceStatus.created
        s.refresh(stopped)
        assert stopped.error == "Cancelled by the user." and stopped.finished_at is not None

        # once the voice has a model, a later run that fails or is stopped leaves it ready:
        # the model from the earlier run still converts
        s.add(
            Artifact(
                user_id=user.id,
                voice_id=voice.id,
                kind=ArtifactKind.voice_package,
                stage="train",
                filename="v.zip",
                content_type="application/zip",
                size_bytes=1,
                sha256="0" * 64,
                storage_key="k",
            )
        )
        s.flush()
        failing = _job(s, user.id, voice.id, JobStatus.running)
        assert jobstate.fail(s, job_id=failing.id, worker=W, error="out of memory")
        assert voice_status() == VoiceStatus.ready
        stopped = _job(s, user.id, voice.id, JobStatus.running)
        assert jobstate.stop(s, job_id=stopped.id, worker=W)
        assert voice_status() == VoiceStatus.ready


def test_the_users_cancel_is_immediate_when_queued_a_request_when_running(db_url):
    with get_sessionmaker(db_url)() as s:
        user = crud.create_user(s, name="cancel")
        voice = crud.create_voice(s, user_id=user.id, name="v")
        queued = _job(s, user.id, voice.id, JobStatus.queued)
        assert jobstate.cancel(s, job=queued) == JobStatus.cancelled
        assert queued.finished_at is not None and queued.cancel_requested
        running = _job(s, user.id, voice.id, JobStatus.running)
        assert jobstate.cancel(s, job=running) == JobStatus.running
        assert running.cancel_requested and running.finished_at is None
        done = _job(s, user.id, voice.id, JobStatus.succeeded)
        assert jobstate.cancel(s, job=done) == JobStatus.succeeded and not done.cancel_requested


def test_a_cancel_that_arrives_during_a_stage_ends_the_job_instead_of_queueing_it(db_url):
    """The cancel came after the stage's last check: advancing or handing the job back would
    leave it queued with its cancel flag, which no worker claims."""
    with get_sessionmaker(db_url)() as s:
        user = crud.create_user(s, name="late-cancel")
        voice = crud.create_voice(s, user_id=user.id, name="v")
        for finish in (
            lambda j: jobstate.complete_stage(s, job_id=j.id, stage="ingest", worker=W),
            lambda j: jobstate.requeue(s, job_id=j.id, worker=W, reason="shutdown"),
        ):
            job = _job(s, user.id, voice.id, JobStatus.running)
            assert jobstate.request_cancel(s, job_id=job.id)
            result = finish(job)
            assert result in ((T.stop, None), False)
            s.expire_all()
            after = s.get(Job, job.id)
            assert after is not None and after.status == JobStatus.cancelled
            assert after.error == "Cancelled by the user."
        last = _job(s, user.id, voice.id, JobStatus.running, stage=Stage.separate)
        assert jobstate.request_cancel(s, job_id=last.id)
        # the last stage finished: its result exists, the job succeeded
        assert jobstate.complete_stage(s, job_id=last.id, stage="separate", worker=W)[0] is (
            T.succeed
        )


def test_retry_resumes_where_it_stopped_and_the_sweep_sees_unsent_jobs(db_url):
    with get_sessionmaker(db_url)() as s:
        user = crud.create_user(s, name="retry")
        voice = crud.create_voice(s, user_id=user.id, name="v")
        job = _job(s, user.id, voice.id, JobStatus.failed, stage=Stage.separate, error="boom")
        job.queued_at = utcnow() - OLD
        assert jobstate.retry(s, job=job)
        assert job.status == JobStatus.queued and job.stage == Stage.separate
        assert job.progress == pytest.approx(0.5) and job.error is None and job.attempts == 0
        assert [r.id for r in jobstate.unsent(s, queued_before=utcnow())] == [job.id]
        assert jobstate.mark_dispatched(s, job_id=job.id, stage="separate")
        assert jobstate.unsent(s, queued_before=utcnow()) == []


def test_create_refuses_an_empty_pipeline_and_unknown_names(db_url):
    with get_sessionmaker(db_url)() as s:
        user = crud.create_user(s, name="create")
        with pytest.raises(ValueError):
            jobstate.create(s, user_id=user.id, kind=JobKind.ingest, stages=())
        with pytest.raises(ValueError):
            jobstate.create(s, user_id=user.id, kind="nonsense", stages=(Stage.ingest,))  # type: ignore[arg-type]
        with pytest.raises(ValueError):
            jobstate.create(s, user_id=user.id, kind=JobKind.ingest, stages=("nonsense",))  # type: ignore[arg-type]
