"""All queries, as keyword-only functions. Every read of a user's resource filters by owner:
another user's id is indistinguishable from an id that does not exist."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from app.core import jobstate
from app.core.db.models import (
    ApiToken,
    Artifact,
    BrowserSession,
    Conversion,
    Job,
    JobStatus,
    Track,
    TrackRole,
    User,
    Voice,
    WorkerBeat,
    utcnow,
)
from app.core.names import ArtifactKind

TOKEN_PREFIX = "svc_"


# --- users and tokens ---------------------------------------------------------------------


def hash_token(token: str, *, pepper: str) -> str:
    return hmac.new(pepper.encode(), token.encode(), hashlib.sha256).hexdigest()


def create_user(session: Session, *, name: str) -> User:
    user = User(name=name)
    session.add(user)
    session.flush()
    return user


def get_user_by_name(session: Session, *, name: str) -> User | None:
    return session.scalar(select(User).where(User.name == name))


def list_users(session: Session) -> Sequence[User]:
    return session.scalars(select(User).order_by(User.created_at)).all()


def create_token(session: Session, *, user: User, pepper: str, name: str = "") -> str:
    """Create an API token; returns the plain token, which is shown once and stored hashed."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    session.add(
        ApiToken(
            user_id=user.id,
            name=name,
            token_hash=hash_token(token, pepper=pepper),
            prefix=token[: len(TOKEN_PREFIX) + 4],
        )
    )
    session.flush()
    return token


TOKEN_TOUCH_INTERVAL = timedelta(minutes=1)


def _live_token(session: Session, *, token: str, pepper: str) -> ApiToken | None:
    row = session.scalar(
        select(ApiToken).where(
            ApiToken.token_hash == hash_token(token, pepper=pepper), ApiToken.revoked_at.is_(None)
        )
    )
    return None if row is None or not row.user.is_active else row


def user_for_token(session: Session, *, token: str, pepper: str) -> User | None:
    row = _live_token(session, token=token, pepper=pepper)
    if row is None:
        return None
    now = utcnow()
    if row.last_used_at is None or now - row.last_used_at > TOKEN_TOUCH_INTERVAL:
        # Recorded at most once a minute, in its own short transaction: a write held open for
        # the whole request would serialise every request on SQLite's single writer lock.
        row.last_used_at = now
        session.commit()
    return row.user


SESSION_PREFIX = "svcs_"


def open_browser_session(
    session: Session, *, token: str, pepper: str, lifetime: timedelta
) -> tuple[str, User] | None:
    """Sign a browser in with an API token: a new session whose random id (returned, for the
    cookie) is stored only as a hash, tied to the token (revoking the token ends it). None
    when the token is not valid. The user's expired sessions are swept on the way."""
    row = _live_token(session, token=token, pepper=pepper)
    if row is None:
        return None
    now = utcnow()
    session.execute(
        delete(BrowserSession).where(
            BrowserSession.user_id == row.user_id, BrowserSession.expires_at <= now
        )
    )
    secret = SESSION_PREFIX + secrets.token_urlsafe(32)
    session.add(
        BrowserSession(
            user_id=row.user_id,
            token_id=row.id,
            secret_hash=hash_token(secret, pepper=pepper),
            created_at=now,
            expires_at=now + lifetime,
        )
    )
    session.flush()
    return secret, row.user


def user_for_browser_session(session: Session, *, secret: str, pepper: str) -> User | None:
    """The user of a live browser session: not expired, its token not revoked."""
    row = session.scalar(
        select(BrowserSession).where(
            BrowserSession.secret_hash == hash_token(secret, pepper=pepper),
            BrowserSession.expires_at > utcnow(),
        )
    )
    if row is None or row.token.revoked_at is not None or not row.token.user.is_active:
        return None
    return row.token.user


def close_browser_session(session: Session, *, secret: str, pepper: str) -> bool:
    """Logout: the session is deleted, so its cookie is worthless even if it was copied."""
    done = session.execute(
        delete(BrowserSession).where(
            BrowserSession.secret_hash == hash_token(secret, pepper=pepper)
        )
    )
    return bool(getattr(done, "rowcount", 0))


# --- voices -------------------------------------------------------------------------------


def create_voice(
    session: Session,
    *,
    user_id: str,
    name: str,
    description: str = "",
    settings: dict[str, Any] | None = None,
) -> Voice:
    voice = Voice(user_id=user_id, name=name, description=description, settings=settings or {})
    session.add(voice)
    session.flush()
    return voice


def list_voices(session: Session, *, user_id: str) -> Sequence[Voice]:
    return session.scalars(
        select(Voice).where(Voice.user_id == user_id).order_by(Voice.created_at.desc())
    ).all()


def get_voice(session: Session, *, user_id: str, voice_id: str) -> Voice | None:
    return session.scalar(select(Voice).where(Voice.id == voice_id, Voice.user_id == user_id))


# --- tracks -------------------------------------------------------------------------------


def list_tracks(
    session: Session,
    *,
    user_id: str,
    voice_id: str | None = None,
    role: TrackRole | None = None,
) -> Sequence[Track]:
    q = select(Track).where(Track.user_id == user_id)
    if voice_id is not None:
        q = q.where(Track.voice_id == voice_id)
    if role is not None:
        q = q.where(Track.role == role)
    return session.scalars(q.order_by(Track.created_at)).all()


def get_track(session: Session, *, user_id: str, track_id: str) -> Track | None:
    return session.scalar(select(Track).where(Track.id == track_id, Track.user_id == user_id))


def get_tracks_by_ids(session: Session, *, ids: Sequence[str]) -> Sequence[Track]:
    rows = {t.id: t for t in session.scalars(select(Track).where(Track.id.in_(list(ids))))}
    return [rows[i] for i in ids if i in rows]


# --- conversions --------------------------------------------------------------------------


def list_conversions(
    session: Session, *, user_id: str, voice_id: str | None = None
) -> Sequence[Conversion]:
    q = select(Conversion).where(Conversion.user_id == user_id)
    if voice_id is not None:
        q = q.where(Conversion.voice_id == voice_id)
    return session.scalars(q.order_by(Conversion.created_at.desc())).all()


def conversions_of_track(session: Session, *, track_id: str) -> Sequence[Conversion]:
    return session.scalars(select(Conversion).where(Conversion.source_track_id == track_id)).all()


def get_conversion(session: Session, *, user_id: str, conversion_id: str) -> Conversion | None:
    return session.scalar(
        select(Conversion).where(Conversion.id == conversion_id, Conversion.user_id == user_id)
    )


# --- jobs ---------------------------------------------------------------------------------


def get_job(session: Session, *, user_id: str, job_id: str) -> Job | None:
    return session.scalar(select(Job).where(Job.id == job_id, Job.user_id == user_id))


def list_jobs(
    session: Session,
    *,
    user_id: str,
    status: JobStatus | None = None,
    voice_id: str | None = None,
    conversion_id: str | None = None,
    limit: int = 100,
    offset: int = 0,
) -> Sequence[Job]:
    q = select(Job).where(Job.user_id == user_id)
    if status is not None:
        q = q.where(Job.status == status)
    if voice_id is not None:
        q = q.where(Job.voice_id == voice_id)
    if conversion_id is not None:
        q = q.where(Job.conversion_id == conversion_id)
    return session.scalars(q.order_by(Job.created_at.desc()).limit(limit).offset(offset)).all()


def active_jobs_for(
    session: Session, *, voice_id: str | None = None, conversion_id: str | None = None
) -> Sequence[Job]:
    q = select(Job).where(Job.status.in_(jobstate.ACTIVE))
    if voice_id is not None:
        q = q.where(Job.voice_id == voice_id)
    if conversion_id is not None:
        q = q.where(Job.conversion_id == conversion_id)
    return session.scalars(q).all()


# --- artifacts ----------------------------------------------------------------------------


def list_artifacts(
    session: Session,
    *,
    user_id: str,
    voice_id: str | None = None,
    conversion_id: str | None = None,
    job_id: str | None = None,
    track_id: str | None = None,
    kind: ArtifactKind | None = None,
    inputs_key: str | None = None,
    newest_first: bool = False,
) -> Sequence[Artifact]:
    """The user's artifacts matching every filter given (oldest first unless asked)."""
    q = select(Artifact).where(Artifact.user_id == user_id)
    for col, val in (
        (Artifact.voice_id, voice_id),
        (Artifact.conversion_id, conversion_id),
        (Artifact.job_id, job_id),
        (Artifact.track_id, track_id),
        (Artifact.kind, kind),
        (Artifact.inputs_key, inputs_key),
    ):
        if val is not None:
            q = q.where(col == val)
    order = Artifact.created_at.desc() if newest_first else Artifact.created_at
    return session.scalars(q.order_by(order)).all()


def get_artifact(session: Session, *, user_id: str, artifact_id: str) -> Artifact | None:
    return session.scalar(
        select(Artifact).where(Artifact.id == artifact_id, Artifact.user_id == user_id)
    )


# --- workers ------------------------------------------------------------------------------


def beat_worker(
    session: Session, *, name: str, queues: str, hostname: str, pid: int, device: str
) -> None:
    row = session.get(WorkerBeat, name)
    now = utcnow()
    if row is None:
        session.add(
            WorkerBeat(
                name=name,
                queues=queues,
                hostname=hostname,
                pid=pid,
                device=device,
                started_at=now,
                last_seen=now,
            )
        )
    else:
        row.last_seen = now
        row.queues, row.pid, row.device = queues, pid, device
    session.flush()


def live_workers(session: Session, *, since: datetime) -> Sequence[WorkerBeat]:
    return session.scalars(
        select(WorkerBeat).where(WorkerBeat.last_seen >= since).order_by(WorkerBeat.name)
    ).all()


def remove_worker(session: Session, *, name: str) -> None:
    row = session.get(WorkerBeat, name)
    if row is not None:
        session.delete(row)
