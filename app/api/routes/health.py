from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter, Response
from sqlalchemy import text
from starlette.concurrency import run_in_threadpool

from app.api.deps import OptionalUser, SettingsDep
from app.api.schemas import Health, WorkerPublic
from app.core.db import crud
from app.core.db.models import utcnow
from app.core.db.session import get_sessionmaker
from app.core.names import Queue
from app.core.queue import check_broker

router = APIRouter(tags=["health"])


@router.get("/health", response_model=Health, responses={503: {"model": Health}})
async def health(settings: SettingsDep, response: Response, user: OptionalUser) -> Health:
    """Database, broker and the workers seen in the last few heartbeats (their queues and
    devices). No auth needed; with a token it also names the workers' hosts and processes and
    the errors in full (an anonymous caller learns nothing about the machines)."""

    def db_check() -> tuple[str, list[WorkerPublic]]:
        try:
            with get_sessionmaker(settings.database_url)() as s:
                s.execute(text("SELECT 1"))
                since = utcnow() - timedelta(seconds=3 * settings.heartbeat_interval_s + 5)
                workers = [
                    WorkerPublic.model_validate(w) for w in crud.live_workers(s, since=since)
                ]
            return "ok", workers
        except Exception as exc:  # noqa: BLE001 - reported, not raised
            return f"error: {type(exc).__name__}: {exc}", []

    db, workers = await run_in_threadpool(db_check)
    broker_err = await run_in_threadpool(check_broker, settings)
    if user is None:
        workers = [w.model_copy(update={"name": None, "hostname": None}) for w in workers]
        db = db if db == "ok" else "error"
        broker_err = None if broker_err is None else "unreachable"
    served = {q for w in workers for q in w.queues.split(",") if q}
    missing = [q.value for q in Queue if q.value not in served]
    ok = db == "ok" and broker_err is None
    if not ok:
        response.status_code = 503
    return Health(
        status="ok" if ok and not missing else "degraded",
        database=db,
        broker="ok" if broker_err is None else f"error: {broker_err}",
        workers=workers,
        queues_without_workers=missing,
    )
