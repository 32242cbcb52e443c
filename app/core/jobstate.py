"""The job state machine: every change of a job's status is a function in this module, and
the statuses each change may start from are in one table, ``TRANSITIONS``.

Every transition is one conditional UPDATE guarded by the table's source statuses (and, for a
worker's own job, by the worker's name and the stage), so two parties racing on one job cannot
both win: a message delivered twice, a watchdog re-sending the job of a worker that still
lives, a cancel and a completion at the same moment — exactly one UPDATE matches, the other
finds no row and its caller learns it lost. Functions take the caller's session and do not
commit (the caller's ``session_scope`` or request does).

Who calls what: the API creates, cancels and retries; the queue client records dispatch;
workers claim, beat, report progress, advance, succeed, fail, stop and requeue; the
watchdog recovers stale jobs.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import case, select, update
from sqlalchemy.orm import Session

from app.core.db.models import Artifact, Job, JobStatus, Voice, VoiceStatus, utcnow
from app.core.names import ArtifactKind, JobKind, Stage

Q, R, S, F, C = (
    JobStatus.queued,
    JobStatus.running,
    JobStatus.succeeded,
    JobStatus.failed,
    JobStatus.cancelled,
)


class Transition(enum.StrEnum):
    create = "create"  # a new job, queued at its first stage
    dispatch = "dispatch"  # the broker took the message of the queued stage
    undispatch = "undispatch"  # the broker refused it: queued and unsent, for the sweep
    claim = "claim"  # a worker starts the stage
    beat = "beat"  # the running worker's heartbeat
    progress = "progress"  # the running worker reports progress
    request_cancel = "request_cancel"  # the user asks a running job to stop
    cancel_queued = "cancel_queued"  # the user cancels a job no worker runs
    advance = "advance"  # the stage succeeded: the next one is queued
    succeed = "succeed"  # the last stage succeeded
    fail = "fail"  # the stage failed (input, installation, crash)
    stop = "stop"  # the worker stopped a running stage because the user cancelled
    requeue = "requeue"  # the worker hands its job back (shutdown, temporary error)
    recover = "recover"  # the watchdog: the worker died, queue the stage again
    give_up = "give_up"  # the watchdog: the worker died too often
    reap_cancelled = "reap_cancelled"  # the watchdog: the worker died while cancelling
    retry = "retry"  # the user starts a failed or cancelled job again where it stopped


#: transition -> (statuses it may start from, status it leaves the job in)
TRANSITIONS: dict[Transition, tuple[frozenset[JobStatus], JobStatus]] = {
    Transition.create: (frozenset(), Q),
    Transition.dispatch: (frozenset({Q}), Q),
    Transition.undispatch: (frozenset({Q}), Q),
    Transition.claim: (frozenset({Q}), R),
    Transition.beat: (frozenset({R}), R),
    Transition.progress: (frozenset({R}), R),
    Transition.request_cancel: (frozenset({R}), R),
    Transition.cancel_queued: (frozenset({Q}), C),
    Transition.advance: (frozenset({R}), Q),
    Transition.succeed: (frozenset({R}), S),
    Transition.fail: (frozenset({R}), F),
    Transition.stop: (frozenset({R}), C),
    Transition.requeue: (frozenset({R}), Q),
    Transition.recover: (frozenset({R}), Q),
    Transition.give_up: (frozenset({R}), F),
    Transition.reap_cancelled: (frozenset({R}), C),
    Transition.retry: (frozenset({F, C}), Q),
}

ACTIVE = frozenset({Q, R})
TERMINAL = frozenset({S, F, C})
RETRYABLE = TRANSITIONS[Transition.retry][0]
#: jobs whose outcome is their voice's status
VOICE_KINDS = frozenset({JobKind.voice, JobKind.voice_import})

BROKER_DOWN = (
    "{stage}: waiting for the job queue (the broker is unreachable); the job is sent to a "
    "worker as soon as the broker is back"
)


def _apply(session: Session, t: Transition, job_id: str, *guards: Any, **values: Any) -> bool:
    """The one UPDATE every transition is: from the table's statuses, to its status."""
    sources, target = TRANSITIONS[t]
    res = session.execute(
        update(Job)
        .where(Job.id == job_id, Job.status.in_(sources), *guards)
        .values(status=target, **values)
    )
    return bool(res.rowcount)  # type: ignore[attr-defined]


def _finished(**extra: Any) -> dict[str, Any]:
    return {"finished_at": utcnow(), "eta_s": None, **extra}


def _waiting(stage: str, message: str) -> dict[str, Any]:
    """A job handed (back) to the queue at ``stage``: unsent, no worker."""
    return {
        "stage": stage,
        "worker": None,
        "queued_at": utcnow(),
        "dispatched_at": None,
        "eta_s": None,
        "message": message,
    }


def _own(worker: str, stage: str | None = None) -> tuple[Any, ...]:
    """Guards of a worker's write to its own job (and stage)."""
    guards: tuple[Any, ...] = (Job.worker == worker,)
    return guards if stage is None else (*guards, Job.stage == stage)


# --- the API --------------------------------------------------------------------------------


def create(
    session: Session,
    *,
    user_id: str,
    kind: JobKind,
    stages: Sequence[Stage],
    params: dict[str, Any] | None = None,
    voice_id: str | None = None,
    conversion_id: str | None = None,
    max_attempts: int = 3,
) -> Job:
    """A new job, queued at its first stage (its message is sent after the commit)."""
    if not stages:
        raise ValueError("a job needs at least one stage")
    job = Job(
        user_id=user_id,
        kind=JobKind(kind),
        stages=[Stage(s).value for s in stages],
        stage=Stage(stages[0]),
        params=params or {},
        voice_id=voice_id,
        conversion_id=conversion_id,
        max_attempts=max_attempts,
        status=TRANSITIONS[Transition.create][1],
        queued_at=utcnow(),
        state={},
    )
    session.add(job)
    session.flush()
    return job


def cancel_queued(session: Session, *, job_id: str) -> bool:
    """Cancel a job no worker runs yet; False if it is not queued."""
    return _apply(
        session,
        Transition.cancel_queued,
        job_id,
        **_finished(cancel_requested=True, message="cancelled before it started"),
    )


def request_cancel(session: Session, *, job_id: str) -> bool:
    """Ask a running job to stop: its worker stops at its next check (training saves a
    checkpoint first) and ends it with ``stop``. False if it is not running."""
    return _apply(
        session, Transition.request_cancel, job_id, cancel_requested=True, message="cancelling…"
    )


def cancel(session: Session, *, job: Job) -> JobStatus:
    """The user's cancel: at once for a queued job, else a request to the running one.
    Returns the job's status afterwards."""
    if not cancel_queued(session, job_id=job.id):
        request_cancel(session, job_id=job.id)
    session.flush()
    session.refresh(job)
    return JobStatus(job.status)


def retry(session: Session, *, job: Job) -> bool:
    """Queue a failed or cancelled job again at the stage where it stopped. Its state (resume
    data, checkpoints, cached chunks, earlier stages' artifacts) is kept, so it continues
    rather than starting over. False when the job is not failed/cancelled any more."""
    stages = list(job.stages)
    stage = str(job.stage) if job.stage in stages else stages[0]
    ok = _apply(
        session,
        Transition.retry,
        job.id,
        **_waiting(stage, f"{stage}: waiting for a worker (retry)"),
        stage_progress=0.0,
        progress=stages.index(stage) / len(stages),
        cancel_requested=False,
        attempts=0,
        error=None,
        traceback=None,
        heartbeat_at=None,
        finished_at=None,
    )
    session.flush()
    session.refresh(job)
    return ok


# --- the queue client ------------------------------------------------------------------------


def mark_dispatched(session: Session, *, job_id: str, stage: str) -> bool:
    """The broker holds the message for the job's current queued stage (and a "waiting for
    the job queue" status line is taken back)."""
    down = BROKER_DOWN.format(stage=stage)
    return _apply(
        session,
        Transition.dispatch,
        job_id,
        Job.stage == stage,
        dispatched_at=utcnow(),
        message=case((Job.message == down, f"{stage}: waiting for a worker"), else_=Job.message),
    )


def mark_undispatched(session: Session, *, job_id: str, stage: str) -> bool:
    """The broker refused the message: say so on the job, which stays queued and unsent."""
    return _apply(
        session,
        Transition.undispatch,
        job_id,
        Job.stage == stage,
        message=BROKER_DOWN.format(stage=stage),
    )


def unsent(
    session: Session, *, queued_before: datetime, resent_before: datetime | None = None
) -> Sequence[Any]:
    """``(id, stage)`` of queued, uncancelled jobs to send (again): those whose message the
    broker never took, queued before ``queued_before``; and (``resent_before``) those it
    took before that time that no worker has claimed since, whose message may be lost (a
    Redis restarted empty). Sending one twice is harmless: the claim is conditional."""
    waiting = Job.dispatched_at.is_(None) & (Job.queued_at < queued_before)
    if resent_before is not None:
        waiting = waiting | (Job.dispatched_at < resent_before)
    return session.execute(
        select(Job.id, Job.stage).where(Job.status == Q, Job.cancel_requested.is_(False), waiting)
    ).all()


# --- a worker and its own job ------------------------------------------------------------------


def claim(session: Session, *, job_id: str, stage: str, worker: str) -> bool:
    """Start ``stage`` of a queued, uncancelled job; False if someone else has (or it is gone)."""
    now = utcnow()
    ok = _apply(
        session,
        Transition.claim,
        job_id,
        Job.stage == stage,
        Job.cancel_requested.is_(False),
        worker=worker,
        heartbeat_at=now,
        stage_started_at=now,
        stage_progress=0.0,
        attempts=Job.attempts + 1,
        started_at=now,
        message=f"{stage}: starting",
        eta_s=None,
    )
    if ok:
        job = session.get(Job, job_id)
        if job is not None and job.kind == JobKind.voice:
            _set_voice(session, job, VoiceStatus.training)
    return ok


def beat(session: Session, *, job_id: str, worker: str) -> bool:
    """The heartbeat; False when the worker no longer owns the job."""
    return _apply(session, Transition.beat, job_id, *_own(worker), heartbeat_at=utcnow())


def progress(
    session: Session,
    *,
    job_id: str,
    worker: str,
    stage_progress: float,
    progress: float,
    eta_s: float | None,
    message: str | None = None,
) -> bool:
    """Progress of the running stage (also a heartbeat); False when the job was lost."""
    values: dict[str, Any] = {
        "stage_progress": stage_progress,
        "progress": progress,
        "eta_s": eta_s,
        "heartbeat_at": utcnow(),
    }
    if message is not None:
        values["message"] = message
    return _apply(session, Transition.progress, job_id, *_own(worker), **values)


def cancel_requested(session: Session, *, job_id: str) -> bool:
    return bool(session.scalar(select(Job.cancel_requested).where(Job.id == job_id)))


def complete_stage(
    session: Session, *, job_id: str, stage: str, worker: str
) -> tuple[Transition | None, str | None]:
    """After a successful stage: queue the next one, or finish the job after the last; a job
    whose cancel arrived during the stage stops here instead of being queued again (nobody
    would claim it). Returns (the transition made, None if this worker no longer owned the
    job; the next stage to send)."""
    job = session.get(Job, job_id)
    if job is None:
        return None, None
    stages = list(job.stages)
    i = stages.index(stage)
    nxt = stages[i + 1] if i + 1 < len(stages) else None
    if nxt is None:
        ok = _apply(
            session,
            Transition.succeed,
            job_id,
            *_own(worker, stage),
            **_finished(progress=1.0, stage_progress=1.0, message="done"),
        )
        if ok:
            _set_voice(session, job, VoiceStatus.ready)
        return (Transition.succeed if ok else None), None
    if _apply(
        session,
        Transition.advance,
        job_id,
        *_own(worker, stage),
        Job.cancel_requested.is_(False),
        **_waiting(nxt, f"{nxt}: waiting for a worker"),
        stage_progress=0.0,
        progress=(i + 1) / len(stages),
        attempts=0,
    ):
        return Transition.advance, nxt
    stopped = stop(session, job_id=job_id, worker=worker, if_cancelled=True)
    return (Transition.stop if stopped else None), None


def fail(session: Session, *, job_id: str, worker: str, error: str, tb: str | None = None) -> bool:
    """The running stage failed; ``error`` is the plain words users read."""
    ok = _apply(
        session,
        Transition.fail,
        job_id,
        *_own(worker),
        **_finished(error=error, traceback=tb, message=error),
    )
    if ok:
        _set_voice_of(session, job_id, VoiceStatus.failed)
    return ok


def stop(session: Session, *, job_id: str, worker: str, if_cancelled: bool = False) -> bool:
    """The worker stopped the running stage because the user cancelled the job
    (``if_cancelled``: only if a cancel was asked for, which arrived after the stage's last
    check)."""
    guards = (*_own(worker), *((Job.cancel_requested.is_(True),) if if_cancelled else ()))
    ok = _apply(
        session,
        Transition.stop,
        job_id,
        *guards,
        **_finished(error="Cancelled by the user.", message="cancelled"),
    )
    if ok:
        _set_voice_of(session, job_id, VoiceStatus.created)
    return ok


def requeue(session: Session, *, job_id: str, worker: str, reason: str) -> bool:
    """Give a running job of this worker back to the queue at the same stage (shutdown,
    temporary error); its resume data stays. A job the user cancelled meanwhile ends
    cancelled instead (False: nothing to send)."""
    job = session.get(Job, job_id)
    if job is None or job.stage is None:
        return False
    if _apply(
        session,
        Transition.requeue,
        job_id,
        *_own(worker),
        Job.cancel_requested.is_(False),
        **_waiting(job.stage, reason),
    ):
        return True
    stop(session, job_id=job_id, worker=worker, if_cancelled=True)  # cancelled meanwhile
    return False


# --- the watchdog ----------------------------------------------------------------------------


def stale(session: Session, *, beat_before: datetime) -> Sequence[Any]:
    """``(id, stage, attempts, max_attempts, cancel_requested)`` of running jobs whose
    heartbeat is older than the cutoff: their worker died."""
    return session.execute(
        select(Job.id, Job.stage, Job.attempts, Job.max_attempts, Job.cancel_requested).where(
            Job.status == R, Job.heartbeat_at < beat_before
        )
    ).all()


def recover(session: Session, row: Any, *, beat_before: datetime) -> Transition | None:
    """Deal with one stale job from ``stale``: finish its cancel, give up after its last
    attempt, else queue the stage again (resumed from its last checkpoint). Returns the
    transition made, None if the job moved meanwhile (its worker came back, say)."""
    job_id, stage, attempts, max_attempts, cancel = row
    guard = Job.heartbeat_at < beat_before
    if cancel:
        ok = _apply(
            session, Transition.reap_cancelled, job_id, guard, **_finished(message="cancelled")
        )
        t = Transition.reap_cancelled
        voice = VoiceStatus.created
    elif attempts >= max_attempts:
        msg = (
            f"The worker running this job stopped responding {attempts} times "
            f"(stage '{stage}'); giving up."
        )
        ok = _apply(session, Transition.give_up, job_id, guard, **_finished(error=msg, message=msg))
        t = Transition.give_up
        voice = VoiceStatus.failed
    else:
        ok = _apply(
            session,
            Transition.recover,
            job_id,
            guard,
            **_waiting(stage, f"{stage}: worker lost, resuming from the last checkpoint"),
        )
        return Transition.recover if ok else None
    if ok:
        _set_voice_of(session, job_id, voice)
    return t if ok else None


# --- a job's voice ---------------------------------------------------------------------------


def _set_voice(session: Session, job: Job, status: VoiceStatus) -> None:
    """A training or import job's outcome is its voice's status, except that a voice which
    has a model already (a package from an earlier run) stays ready when a later run fails
    or is stopped: that model still converts."""
    if job.kind not in VOICE_KINDS or not job.voice_id:
        return
    voice = session.get(Voice, job.voice_id)
    if voice is None:
        return
    if status in (VoiceStatus.failed, VoiceStatus.created) and _has_model(session, voice.id):
        status = VoiceStatus.ready
    voice.status = status
    session.flush()


def _has_model(session: Session, voice_id: str) -> bool:
    found = session.scalar(
        select(Artifact.id)
        .where(Artifact.voice_id == voice_id, Artifact.kind == ArtifactKind.voice_package)
        .limit(1)
    )
    return found is not None


def _set_voice_of(session: Session, job_id: str, status: VoiceStatus) -> None:
    job = session.get(Job, job_id)
    if job is not None:
        _set_voice(session, job, status)
