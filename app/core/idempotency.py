"""Idempotent submission: a job-creating request sent again with the same ``Idempotency-Key``
gets the first answer again and creates nothing.

A key belongs to a user. Its row is inserted as the first write of the request's own
transaction and carries the answer, committed together with the jobs it created. A second
request with the key therefore either finds the row (and replays its answer), or its insert
waits for the first transaction (PostgreSQL's unique index; SQLite's single writer) and then
fails on the unique constraint; it rolls back whatever it did and replays. Either way one job
exists. The same key with another request (method, path or body) is refused.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.core.db.models import IdempotencyKey, utcnow

HEADER = "Idempotency-Key"
_KEY = re.compile(r"[\x21-\x7e]{1,255}")  # printable ASCII, no spaces (Stripe's rule)


class KeyMismatch(Exception):
    """The key was used for another request."""


class KeyInvalid(Exception):
    pass


class KeyBusy(Exception):
    """Another request with the key has not answered (yet): try again shortly."""


class Replay(Exception):
    """The request was answered before: send this answer again."""

    def __init__(self, status_code: int, response: Any) -> None:
        super().__init__(status_code)
        self.status_code = status_code
        self.response = response


@dataclass(frozen=True)
class Idempotency:
    """A request's key and what it asks, as a fingerprint."""

    key: str
    fingerprint: str


def request(key: str | None, method: str, path: str, body: Any) -> Idempotency | None:
    """The request's idempotency, None without a key. ``body``: what the request asks, as
    JSON-able data (a parsed body, or an upload's fields and files' hashes)."""
    if key is None:
        return None
    if not _KEY.fullmatch(key):
        raise KeyInvalid(
            f"The {HEADER} header must be 1 to 255 printable characters without spaces."
        )
    blob = json.dumps([method.upper(), path, body], sort_keys=True, default=str).encode()
    return Idempotency(key, hashlib.sha256(blob).hexdigest())


def _find(session: Session, user_id: str, key: str) -> IdempotencyKey | None:
    return session.scalar(
        select(IdempotencyKey).where(IdempotencyKey.user_id == user_id, IdempotencyKey.key == key)
    )


def _settle(row: IdempotencyKey, idem: Idempotency) -> None:
    """An existing key: refuse another request, else replay the answer."""
    if row.fingerprint != idem.fingerprint:
        raise KeyMismatch(
            f"This {HEADER} was already used for a different request (another route or "
            "other parameters). Use a new key for a new request."
        )
    if row.status_code is None:  # only a request that failed before answering leaves this
        raise KeyBusy(f"The request first sent with this {HEADER} has not finished.")
    raise Replay(row.status_code, row.response)


def claim(session: Session, *, user_id: str, idem: Idempotency, ttl_s: float) -> IdempotencyKey:
    """Take the key for this request: the first write of its transaction. Raises ``Replay``
    or ``KeyMismatch`` when the key was used before (after rolling the session back)."""
    existing = _find(session, user_id, idem.key)
    if existing is not None:
        if existing.created_at >= utcnow() - timedelta(seconds=ttl_s):
            _settle(existing, idem)
        session.delete(existing)  # expired: the key is free again
        session.flush()
    row = IdempotencyKey(user_id=user_id, key=idem.key, fingerprint=idem.fingerprint)
    session.add(row)
    try:
        session.flush()
    except IntegrityError:  # a concurrent request with this key committed first
        session.rollback()
        winner = _find(session, user_id, idem.key)
        if winner is None:  # it rolled back after all: nothing was created
            raise KeyBusy(
                f"A request with this {HEADER} was being processed; send it again."
            ) from None
        _settle(winner, idem)
    return row


def answer(row: IdempotencyKey, status_code: int, response: Any) -> None:
    """Record the request's answer (committed with what it created)."""
    row.status_code = status_code
    row.response = response


def purge(session: Session, *, ttl_s: float) -> int:
    """Forget keys older than ``ttl_s``. Returns how many."""
    res = session.execute(
        delete(IdempotencyKey).where(
            IdempotencyKey.created_at < utcnow() - timedelta(seconds=ttl_s)
        )
    )
    return int(res.rowcount or 0)  # type: ignore[attr-defined]
