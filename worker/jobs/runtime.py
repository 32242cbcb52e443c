"""A worker's side of the job state machine (``app.core.jobstate``): the runtime a stage
function gets, the handle of one running stage (heartbeat, progress, cancellation), and the
watchdog and sweep every worker runs. The status changes themselves are jobstate's functions;
this module binds them to this worker's name and its own database sessions."""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import traceback
import uuid
from contextlib import closing
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy.orm import Session

from app.core import idempotency, jobstate, webhooks
from app.core.config import Settings
from app.core.db import crud
from app.core.db.models import Job, utcnow
from app.core.db.session import get_sessionmaker, session_scope
from app.core.queue import send_and_record
from app.core.storage import LocalStorage
from svc_core.progress import ProgressFn, RateEta, sub_progress

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
    with rt.scope() as s:
        return jobstate.claim(s, job_id=job_id, stage=stage, worker=worker_name())


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
    _eta: RateEta = field(default_factory=RateEta)
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
            if not jobstate.beat(s, job_id=self.job_id, worker=worker_name()):
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
        eta = self._eta.update(f)  # from the measured rate (svc_core.progress.RateEta)
        with self.rt.scope() as s:
            ok = jobstate.progress(
                s,
                job_id=self.job_id,
                worker=worker_name(),
                stage_progress=f,
                progress=(self.stage_index + f) / self.n_stages,
                eta_s=eta,
                message=message,
            )
        if not ok:
            self._lost = True

    def sub_progress(self, stage: str, start: float, end: float) -> ProgressFn:
        """An engine ``progress(stage, fraction)`` hook mapped onto ``start..end`` of this stage."""
        return sub_progress(self.progress, stage, start, end)

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
                self._cancel = jobstate.cancel_requested(s, job_id=self.job_id)
        return self._cancel or self._lost

    @property
    def cancel_requested(self) -> bool:
        return self._cancel

    @property
    def lost(self) -> bool:
        return self._lost


def complete_stage(rt: Runtime, h: JobHandle) -> tuple[jobstate.Transition, str | None]:
    """Advance the job after a successful stage: (what happened: advance, succeed, or stop
    for a cancel that came during the stage; the next stage to send)."""
    with rt.scope() as s:
        done, nxt = jobstate.complete_stage(s, job_id=h.job_id, stage=h.stage, worker=worker_name())
    if done is None:
        raise LostJob(h.job_id)
    return done, nxt


def fail(rt: Runtime, *, job_id: str, error: str, tb: str | None = None) -> None:
    with rt.scope() as s:
        jobstate.fail(s, job_id=job_id, worker=worker_name(), error=error, tb=tb)


def stop(rt: Runtime, *, job_id: str) -> None:
    """The stage stopped because the user cancelled: the job ends cancelled."""
    with rt.scope() as s:
        jobstate.stop(s, job_id=job_id, worker=worker_name())


def requeue(rt: Runtime, *, job_id: str, reason: str) -> bool:
    """Give a running job of this worker back to the queue (shutdown, transient error)."""
    with rt.scope() as s:
        return jobstate.requeue(s, job_id=job_id, worker=worker_name(), reason=reason)


def format_tb(exc: BaseException) -> str:
    return "".join(traceback.format_exception(exc))


# --- the watchdog ---------------------------------------------------------------------------


def requeue_stale(rt: Runtime) -> list[tuple[str, str]]:
    """Re-queue running jobs whose heartbeat went stale (their worker died), or fail them once
    they used up their attempts. Returns ``(job_id, action)`` pairs."""
    cutoff = utcnow() - timedelta(seconds=rt.settings.heartbeat_timeout_s)
    actions: list[tuple[str, str]] = []
    with rt.scope() as s:
        rows = jobstate.stale(s, beat_before=cutoff)
    for row in rows:
        with rt.scope() as s:
            done = jobstate.recover(s, row, beat_before=cutoff)
        if done is None:
            continue
        action = ACTIONS[done]
        if done is jobstate.Transition.recover:
            rt.dispatch(row.id, row.stage)
        actions.append((row.id, action))
        log.warning("watchdog: job %s %s", row.id, action)
    return actions


ACTIONS = {
    jobstate.Transition.recover: "requeued",
    jobstate.Transition.give_up: "failed",
    jobstate.Transition.reap_cancelled: "cancelled",
}


def redispatch_unsent(rt: Runtime) -> list[str]:
    """Send the queued jobs whose message the broker never accepted (it was down when they
    were queued) and that waited longer than ``redispatch_after_s``, and again those it
    accepted more than ``resend_after_s`` ago that no worker claimed (the message may be
    lost: a Redis restarted empty). Returns their ids."""
    now = utcnow()
    with rt.scope() as s:
        unsent = jobstate.unsent(
            s,
            queued_before=now - timedelta(seconds=rt.settings.redispatch_after_s),
            resent_before=now - timedelta(seconds=rt.settings.resend_after_s),
        )
    sent = []
    for job_id, stage in unsent:
        if stage and rt.dispatch(job_id, stage):
            log.warning("sweep: job %s stage %s sent to the broker", job_id, stage)
            sent.append(job_id)
    return sent


def deliver_webhooks(rt: Runtime) -> list[tuple[str, str]]:
    """Send the webhook events that are due (jobs that ended, retries whose time came) and
    record each attempt on its job (``app.core.webhooks.deliver_due``). Returns
    ``(job_id, outcome)`` pairs; never raises."""
    try:
        return webhooks.deliver_due(rt.scope, rt.settings, worker=worker_name())
    except Exception:  # noqa: BLE001 - the next round tries again
        log.exception("webhook delivery")
        return []


def forget_old_keys(rt: Runtime) -> int:
    """Drop Idempotency-Keys older than their time to live (at least a day)."""
    with rt.scope() as s:
        return idempotency.purge(s, ttl_s=rt.settings.idempotency_ttl_s)


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
