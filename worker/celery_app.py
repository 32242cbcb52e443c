"""The worker's Celery app. Start with ``svc-studio worker`` (or ``celery -A worker.celery_app``).

Tasks are acks_late and idempotent: the DB decides whether a delivery does any work. A
background thread in each worker process records the worker as alive and runs the watchdog
that re-queues jobs of dead workers.
"""

from __future__ import annotations

import logging
import threading

from celery import Celery, signals

from app.core.config import get_settings
from app.core.names import STAGE_QUEUE, task_name
from app.core.queue import send_stage as _send
from app.core.storage import LocalStorage
from worker.jobs import runtime as rtm

log = logging.getLogger(__name__)

settings = get_settings()

app = Celery("svc-studio", broker=settings.broker_url, include=["worker.tasks"])
app.conf.update(
    broker_transport_options=settings.broker_transport_options(),
    broker_connection_retry_on_startup=True,
    task_ignore_result=True,
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    worker_prefetch_multiplier=1,
    task_routes={task_name(stage): {"queue": q.value} for stage, q in STAGE_QUEUE.items()},
    task_default_queue="cpu",
    worker_hijack_root_logger=False,
    worker_send_task_events=False,
)


def send_stage(job_id: str, stage: str, countdown: float | None = None) -> None:
    if countdown:
        from app.core.names import queue_for

        app.send_task(
            task_name(stage),
            kwargs={"job_id": job_id, "stage": stage},
            queue=queue_for(stage),
            countdown=countdown,
            expires=settings.job_message_expires_s,
        )
    else:
        _send(settings, job_id=job_id, stage=stage)


_runtime: rtm.Runtime | None = None


def runtime() -> rtm.Runtime:
    global _runtime
    if _runtime is None:
        _runtime = rtm.Runtime(
            settings=settings, storage=LocalStorage(settings.storage_dir), send_stage=send_stage
        )
    return _runtime


def _device() -> str:
    try:
        import torch

        return f"cuda:{torch.cuda.get_device_name(0)}" if torch.cuda.is_available() else "cpu"
    except Exception:  # noqa: BLE001 - torch missing or broken: report cpu
        return "cpu"


_stop_background = threading.Event()


def _background(queues: str) -> None:
    """Worker liveness beats and the stale-job watchdog, until the worker stops. Webhook
    events are sent from a thread of their own (a slow receiver must not delay the beats),
    one round at a time, each watchdog interval."""
    rt = runtime()
    device = _device()
    last_watchdog = 0.0
    hooks: threading.Thread | None = None
    import time

    while not _stop_background.is_set():
        try:
            rtm.beat_worker(rt, queues=queues, device=device)
            now = time.monotonic()
            if now - last_watchdog >= settings.watchdog_interval_s:
                last_watchdog = now
                rtm.requeue_stale(rt)
                rtm.redispatch_unsent(rt)
                rtm.forget_old_keys(rt)
                if hooks is None or not hooks.is_alive():
                    hooks = threading.Thread(
                        target=rtm.deliver_webhooks, args=(rt,), daemon=True, name="svc-webhooks"
                    )
                    hooks.start()
        except Exception:  # noqa: BLE001 - keep beating through DB hiccups
            log.exception("worker background loop")
        _stop_background.wait(settings.heartbeat_interval_s)


@signals.worker_ready.connect
def _on_ready(sender=None, **_kw) -> None:
    queues = (
        ",".join(sorted(q.name for q in sender.app.amqp.queues.consume_from.values()))
        if sender is not None
        else ""
    )
    threading.Thread(target=_background, args=(queues,), daemon=True, name="svc-background").start()


@signals.worker_shutting_down.connect
def _on_shutdown(**_kw) -> None:
    rtm.SHUTDOWN.set()
    _stop_background.set()
    try:
        with runtime().scope() as s:
            from app.core.db import crud

            crud.remove_worker(s, name=rtm.worker_name())
    except Exception:  # noqa: BLE001
        log.exception("could not unregister worker")
