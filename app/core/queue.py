"""Sends jobs to the workers by task name, through a client-only Celery app.

The API never imports worker code or models: it inserts the Job row, commits, then sends
``svc.stage.<stage>`` with the job id.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from functools import lru_cache

from celery import Celery
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from app.core import jobstate
from app.core.config import Settings
from app.core.names import queue_for, task_name

log = logging.getLogger(__name__)


@lru_cache(maxsize=4)
def _client(broker_url: str, options_json: str) -> Celery:
    app = Celery("svc-studio-client", broker=broker_url)
    app.conf.update(
        broker_transport_options=json.loads(options_json),
        task_ignore_result=True,
        broker_connection_retry_on_startup=True,
    )
    return app


def client(settings: Settings) -> Celery:
    options = json.dumps(settings.broker_transport_options(), sort_keys=True)
    return _client(settings.broker_url, options)


def send_stage(settings: Settings, *, job_id: str, stage: str) -> None:
    """Queue one stage of a job. The message carries only the id; the DB holds the state."""
    client(settings).send_task(
        task_name(stage),
        kwargs={"job_id": job_id, "stage": stage},
        queue=queue_for(stage),
        expires=settings.job_message_expires_s,
    )


def send_and_record(session: Session, send: Callable[[], None], *, job_id: str, stage: str) -> bool:
    """Send a committed, queued job's stage with ``send`` and record on the job whether the
    broker took it. A broker that is down leaves the job queued and unsent, with a plain
    status line, for the workers' sweep (``worker.jobs.runtime.redispatch_unsent``). Never
    raises for the broker or for recording: the job and its inputs are committed and nothing
    may undo them; an unrecorded send is only sent again by the sweep, which the workers'
    conditional claim makes harmless. Returns whether the broker took the message."""
    try:
        send()
        sent = True
    except Exception as exc:  # noqa: BLE001 - kombu/redis raise many types; the job is kept
        log.warning("job %s: broker refused stage %s (%s); left for the sweep", job_id, stage, exc)
        sent = False
    try:
        mark = jobstate.mark_dispatched if sent else jobstate.mark_undispatched
        mark(session, job_id=job_id, stage=stage)
        session.commit()
    except OperationalError as exc:
        session.rollback()
        log.warning("job %s: could not record the send of stage %s: %s", job_id, stage, exc)
    return sent


def check_broker(settings: Settings, timeout: float = 2.0) -> str | None:
    """None when the broker answers, else the error in words."""
    try:
        with client(settings).connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=timeout)
        return None
    except Exception as exc:  # noqa: BLE001 - reported to the health endpoint
        return f"{type(exc).__name__}: {exc}"
