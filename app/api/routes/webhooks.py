"""The user's webhook (a default URL and the signing secret) and a job's webhook deliveries.
Events, signatures, retries and the allowed hosts: app/core/webhooks.py."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException
from sqlalchemy.orm import Session

from app.api.deps import CurrentUser, SessionDep, SettingsDep, not_found
from app.api.schemas import (
    WebhookAttempt,
    WebhookDelivery,
    WebhookSecret,
    WebhookSettings,
    WebhookSettingsUpdate,
)
from app.core import jobstate, webhooks
from app.core.db import crud
from app.core.db.models import User

router = APIRouter(tags=["webhooks"])


def _row(session: Session, user: User) -> User:
    """The user's row in this request's session (whichever session authenticated it)."""
    row = session.get(User, user.id)
    if row is None:
        raise not_found("User")
    return row


@router.get("/me/webhook", response_model=WebhookSettings)
def get_webhook(user: CurrentUser, session: SessionDep) -> WebhookSettings:
    user = _row(session, user)
    return WebhookSettings(url=user.webhook_url, has_secret=bool(user.webhook_secret))


@router.put("/me/webhook", response_model=WebhookSettings)
def set_webhook(
    body: WebhookSettingsUpdate, user: CurrentUser, session: SessionDep, settings: SettingsDep
) -> WebhookSettings:
    """Set (or with ``null`` remove) the URL called when a job submitted without
    ``webhook_url`` ends. The host must be allowed by the server. Without a signing secret
    yet, one is created and shown in this answer only."""
    user = _row(session, user)
    created = None
    if body.url:
        try:
            webhooks.check_url(body.url, settings)
        except webhooks.WebhookRefused as exc:
            raise HTTPException(422, str(exc)) from exc
        if not user.webhook_secret:
            created = user.webhook_secret = webhooks.new_secret()
    user.webhook_url = body.url or None
    session.commit()
    return WebhookSettings(
        url=user.webhook_url, has_secret=bool(user.webhook_secret), secret=created
    )


@router.post("/me/webhook-secret", response_model=WebhookSecret, status_code=201)
def new_webhook_secret(user: CurrentUser, session: SessionDep) -> WebhookSecret:
    """A new secret that signs your webhook events from now on (the old one stops). It is
    shown in this answer only: keep it."""
    user = _row(session, user)
    user.webhook_secret = webhooks.new_secret()
    session.commit()
    return WebhookSecret(secret=user.webhook_secret)


@router.get("/jobs/{job_id}/webhook", response_model=WebhookDelivery)
def job_webhook(job_id: str, user: CurrentUser, session: SessionDep) -> WebhookDelivery:
    """The delivery of the job's webhook event: each attempt's answer, and the next one."""
    job = crud.get_job(session, user_id=user.id, job_id=job_id)
    if job is None:
        raise not_found("Job")
    record: dict[str, Any] = job.webhook or {}
    if not job.webhook_url:
        state = "none"
    elif job.status not in jobstate.TERMINAL or not record:
        state = "pending"
    else:
        state = str(record.get("state") or "pending")
    return WebhookDelivery(
        job_id=job.id,
        url=job.webhook_url,
        state=state,  # type: ignore[arg-type]
        event_id=record.get("event_id"),
        attempts=[WebhookAttempt.model_validate(a) for a in record.get("attempts", [])],
        next_at=record.get("next_at"),
        delivered_at=record.get("delivered_at"),
    )
