"""The job state machine the workers and the watchdog share.

Every transition is a conditional UPDATE, so two workers (or a worker and the watchdog) racing
on one job cannot both win: a message delivered twice, or re-sent by the watchdog while the
first worker still lives, finds the job no longer claimable and returns.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import traceback
import uuid
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from app.core.config import Settings
from app.core.db import crud
from app.core.db.models import Job, JobStatus, utcnow
from app.core.db.session import get_sessionmaker, session_scope
from app.core.queue import send_and_record
from app.core.storage import LocalStorage

log = logging.getLogger(__name__)

WORKER_NAME = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


def worker_name() -> str:
    return WORKER_NAME


# Set when the worker process is asked to shut down: running stages stop at their next
# check, save what they can and the job is re-queued for another worker.
SHUTDOWN = threading.Event()


@dataclass
class Runtime:
    """What a job function needs from its environment."""

    settings: Settings
    storage: LocalStorage
    send_stage: Any  # (job_id, stage) -> None

    def session(self) -> Session:
        return get_sessionmaker(self.settings.database_url)()

    def scope(self):
        return session_scope(self.settings.database_url)

    def dispatch(self, job_id: str, stage: str, countdown: float | None = None) -> bool:
        """Send a queued job's stage to the broker and record it (``send_and_record``: a
        broker that is down leaves the job queued and unsent for ``redispatch_unsent``)."""
        with closing(self.session()) as s:
            return send_and_record(
                s,
                lambda: self.send_stage(job_id, stage, countdown=countdown),
                job_id=job_id,
                stage=stage,
            )


def claim(rt: Runtime, *, job_id: str, stage: str) -> bool:
    now = utcnow()
    with rt.scope() as s:
        res = s.execute(
            update(Job)
            .where(
                Job.id == job_id,
                Job.status == JobStatus.queued.value,
                Job.stage == stage,
                Job.cancel_requested.is_(False),
            )
            .values(
                status=JobStatus.running.value,
                worker=worker_name(),
                heartbeat_at=now,
                stage_started_at=now,
                stage_progress=0.0,
                attempts=Job.attempts + 1,
                started_at=now,
                message=f"{stage}: starting",
                eta_s=None,
            )
        )
        return bool(res.rowcount)


class LostJob(Exception):
    """This worker no longer owns the job (the watchdog gave it to another)."""


@dataclass
class JobHandle:
    """Progress, cancellation and heartbeat for one running stage of one job."""

    rt: Runtime
    job_id: str
    stage: str
    stage_index: int
    n_stages: int
    _last_progress_write: float = 0.0
    _fraction: float = 0.0  # the highest stage fraction reported by this run of the stage
    _last_stop_check: float = 0.0
    _cancel: bool = False
    _lost: bool = False
    _started: float = field(default_factory=time.monotonic)
    _stop_beat: threading.Event = field(default_factory=threading.Event)
    _beat_thread: threading.Thread | None = None

    # heartbeat -------------------------------------------------------------------------------
    def start_heartbeat(self) -> None:
        self._beat_thread = threading.Thread(
            target=self._beat_loop, daemon=True, name=f"heartbeat-{self.job_id[:8]}"
        )
        self._beat_thread.start()

    def stop_heartbeat(self) -> None:
        self._stop_beat.set()
        if self._beat_thread is not None:
            self._beat_thread.join(timeout=5)

    def _beat_loop(self) -> None:
        while not self._stop_beat.wait(self.rt.settings.heartbeat_interval_s):
            try:
                self.beat()
            except Exception:  # noqa: BLE001 - a missed beat is retried next interval
                log.exception("heartbeat failed for job %s", self.job_id)

    def beat(self) -> None:
        with self.rt.scope() as s:
            res = s.execute(
                update(Job)
                .where(
                    Job.id == self.job_id,
                    Job.status == JobStatus.running.value,
                    Job.worker == worker_name(),
                )
                .values(heartbeat_at=utcnow())
            )
            if not res.rowcount:
                self._lost = True

    # progress --------------------------------------------------------------------------------
    def progress(
        self, stage: str, fraction: float, message: str | None = None, force: bool = False
    ) -> None:
        del stage  # engine sub-stage names are shown through `message`
        now = time.monotonic()
        if not force and now - self._last_progress_write < self.rt.settings.progress_min_interval_s:
            return
        self._last_progress_write = now
        # a progress bar never moves back within one run of a stage
        f = min(max(float(fraction), self._fraction), 1.0)
        self._fraction = f
        elapsed = now - self._started
        eta = elapsed * (1.0 - f) / f if f > 0.01 else None
        values: dict[str, Any] = {
            "stage_progress": f,
            "progress": (self.stage_index + f) / self.n_stages,
            "eta_s": eta,
            "heartbeat_at": utcnow(),
        }
        if message is not None:
            values["message"] = message
        with self.rt.scope() as s:
            res = s.execute(
                update(Job)
                .where(
                    Job.id == self.job_id,
                    Job.worker == worker_name(),
                    Job.status == JobStatus.running.value,
                )
                .values(**values)
            )
            if not res.rowcount:
                self._lost = True

    def sub_progress(self, stage: str, start: float, end: float) -> Callable[[str, float], None]:
        """An engine ``progress(stage, fraction)`` hook mapped onto ``start..end`` of this stage."""

        def report(_stage: str, fraction: float) -> None:
            self.progress(stage, start + (end - start) * min(max(fraction, 0.0), 1.0))

        return report

    def save_state(self, **items: Any) -> None:
        """Merge resume data into ``job.state`` (kept across attempts)."""
        with self.rt.scope() as s:
            job = s.get(Job, self.job_id)
            assert job is not None
            job.state = {**(job.state or {}), **items}

    def state(self) -> dict[str, Any]:
        with self.rt.scope() as s:
            job = s.get(Job, self.job_id)
            return dict(job.state or {}) if job else {}

    # cancellation ----------------------------------------------------------------------------
    def should_stop(self) -> bool:
        if SHUTDOWN.is_set() or self._lost or self._cancel:
            return True
        now = time.monotonic()
        if now - self._last_stop_check >= 1.0:
            self._last_stop_check = now
            with self.rt.scope() as s:
                flag = s.scalar(select(Job.cancel_requested).where(Job.id == self.job_id))
            self._cancel = bool(flag)
        return self._cancel or self._lost

    @property
    def cancel_requested(self) -> bool:
        return self._cancel

    @property
    def lost(self) -> bool:
        return self._lost


def _finish_values(status: str, **extra: Any) -> dict[str, Any]:
    return {"status": status, "finished_at": utcnow(), "eta_s": None, **extra}


def complete_stage(rt: Runtime, h: JobHandle) -> str | None:
    """Advance the job after a successful stage. Returns the next stage to send, if any."""
    with rt.scope() as s:
        job = s.get(Job, h.job_id)
        assert job is not None
        stages = list(job.stages)
        nxt = stages[h.stage_index + 1] if h.stage_index + 1 < len(stages) else None
        guard = (
            Job.id == h.job_id,
            Job.status == JobStatus.running.value,
            Job.worker == worker_name(),
            Job.stage == h.stage,
        )
        if nxt is None:
            values = _finish_values(
                JobStatus.succeeded.value, progress=1.0, stage_progress=1.0, message="done"
            )
        else:
            values = {
                "status": JobStatus.queued.value,
                "stage": nxt,
                "stage_progress": 0.0,
                "progress": (h.stage_index + 1) / len(stages),
                "queued_at": utcnow(),
                "dispatched_at": None,
                "message": f"{nxt}: waiting for a worker",
                "eta_s": None,
                "attempts": 0,
                "worker": None,
            }
        res = s.execute(update(Job).where(*guard).values(**values))
        if not res.rowcount:
            raise LostJob(h.job_id)
    return nxt


def fail(
    rt: Runtime,
    *,
    job_id: str,
    error: str,
    tb: str | None = None,
    status: str = JobStatus.failed.value,
) -> None:
    with rt.scope() as s:
        s.execute(
            update(Job)
            .where(
                Job.id == job_id, Job.status == JobStatus.running.value, Job.worker == worker_name()
            )
            .values(
                **_finish_values(
                    status,
                    error=error,
                    traceback=tb,
                    message=error if status == JobStatus.failed.value else "cancelled",
                )
            )
        )


def requeue(rt: Runtime, *, job_id: str, reason: str) -> bool:
    """Give a running job of this worker back to the queue (shutdown, transient error)."""
    with rt.scope() as s:
        res = s.execute(
            update(Job)
            .where(
                Job.id == job_id, Job.status == JobStatus.running.value, Job.worker == worker_name()
            )
            .values(
                status=JobStatus.queued.value,
                worker=None,
                queued_at=utcnow(),
                dispatched_at=None,
                message=reason,
                eta_s=None,
            )
        )
        return bool(res.rowcount)


def format_tb(exc: BaseException) -> str:
    return "".join(traceback.format_exception(exc))


# --- the watchdog ---------------------------------------------------------------------------


def requeue_stale(rt: Runtime) -> list[tuple[str, str]]:
    """Re-queue running jobs whose heartbeat went stale (their worker died), or fail them once
    they used up their attempts. Returns ``(job_id, action)`` pairs."""
    cutoff = utcnow() - timedelta(seconds=rt.settings.heartbeat_timeout_s)
    actions: list[tuple[str, str]] = []
    with rt.scope() as s:
        stale = s.execute(
            select(Job.id, Job.stage, Job.attempts, Job.max_attempts, Job.cancel_requested).where(
                Job.status == JobStatus.running.value, Job.heartbeat_at < cutoff
            )
        ).all()
    for job_id, stage, attempts, max_attempts, cancel in stale:
        guard = (Job.id == job_id, Job.status == JobStatus.running.value, Job.heartbeat_at < cutoff)
        with rt.scope() as s:
            if cancel:
                res = s.execute(
                    update(Job)
                    .where(*guard)
                    .values(**_finish_values(JobStatus.cancelled.value, message="cancelled"))
                )
                action = "cancelled"
            elif attempts >= max_attempts:
                msg = (
                    f"The worker running this job stopped responding {attempts} times "
                    f"(stage '{stage}'); giving up."
                )
                res = s.execute(
                    update(Job)
                    .where(*guard)
                    .values(**_finish_values(JobStatus.failed.value, error=msg, message=msg))
                )
                action = "failed"
            else:
                res = s.execute(
                    update(Job)
                    .where(*guard)
                    .values(
                        status=JobStatus.queued.value,
                        worker=None,
                        queued_at=utcnow(),
                        dispatched_at=None,
                        message=f"{stage}: worker lost, resuming from the last checkpoint",
                    )
                )
                action = "requeued"
        if res.rowcount:
            if action == "requeued":
                rt.dispatch(job_id, stage)
            actions.append((job_id, action))
            log.warning("watchdog: job %s %s", job_id, action)
    return actions


def redispatch_unsent(rt: Runtime) -> list[str]:
    """Send the queued jobs whose message the broker never accepted (it was down when they
    were queued) and that waited longer than ``redispatch_after_s``. Returns their ids."""
    cutoff = utcnow() - timedelta(seconds=rt.settings.redispatch_after_s)
    with rt.scope() as s:
        unsent = s.execute(
            select(Job.id, Job.stage).where(
                Job.status == JobStatus.queued.value,
                Job.dispatched_at.is_(None),
                Job.queued_at < cutoff,
                Job.cancel_requested.is_(False),
            )
        ).all()
    sent = []
    for job_id, stage in unsent:
        if stage and rt.dispatch(job_id, stage):
            log.warning("sweep: job %s stage %s sent to the broker", job_id, stage)
            sent.append(job_id)
    return sent


def beat_worker(rt: Runtime, *, queues: str, device: str) -> None:
    with rt.scope() as s:
        crud.beat_worker(
            s,
            name=worker_name(),
            queues=queues,
            hostname=socket.gethostname(),
            pid=os.getpid(),
            device=device,
        )
