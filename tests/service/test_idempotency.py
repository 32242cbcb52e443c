"""Idempotency keys (app/core/idempotency.py) on both databases: a key is taken once per user,
replays its answer, refuses another request, and is forgotten only after its time to live."""

from __future__ import annotations

from datetime import timedelta

import pytest

from app.core import idempotency
from app.core.db import crud
from app.core.db.models import IdempotencyKey, utcnow
from app.core.db.session import get_sessionmaker

DAY = 24 * 3600.0


def _idem(key: str = "k-1", body=None) -> idempotency.Idempotency:
    idem = idempotency.request(key, "post", "/api/v1/x", body or {"a": 1})
    assert idem is not None
    return idem


def test_a_key_replays_its_answer_and_refuses_another_request(db_url):
    sm = get_sessionmaker(db_url)
    with sm() as s:
        alice, bob = crud.create_user(s, name="a").id, crud.create_user(s, name="b").id
        s.commit()
    with sm() as s:
        row = idempotency.claim(s, user_id=alice, idem=_idem(), ttl_s=DAY)
        idempotency.answer(row, 202, {"id": "job-1"})
        s.commit()
    with sm() as s:
        with pytest.raises(idempotency.Replay) as replay:
            # the same request: the body's key order does not matter
            idempotency.claim(s, user_id=alice, idem=_idem(body={"a": 1}), ttl_s=DAY)
        assert (replay.value.status_code, replay.value.response) == (202, {"id": "job-1"})
        with pytest.raises(idempotency.KeyMismatch, match="different request"):
            idempotency.claim(s, user_id=alice, idem=_idem(body={"a": 2}), ttl_s=DAY)
        # keys are per user
        idempotency.claim(s, user_id=bob, idem=_idem(), ttl_s=DAY)
        s.rollback()


def test_the_fingerprint_covers_method_path_and_body_and_keys_are_checked():
    a = _idem()
    assert idempotency.request("k-1", "POST", "/api/v1/x", {"a": 1}) == a
    assert idempotency.request("k-1", "POST", "/api/v1/y", {"a": 1}) != a
    assert idempotency.request(None, "POST", "/x", {}) is None
    for bad in ("", "a b", "x" * 256, "é"):
        with pytest.raises(idempotency.KeyInvalid):
            idempotency.request(bad, "POST", "/x", {})


def test_keys_are_forgotten_only_after_their_time_to_live(db_url):
    sm = get_sessionmaker(db_url)
    with sm() as s:
        user = crud.create_user(s, name="ttl").id
        old = idempotency.claim(s, user_id=user, idem=_idem("old"), ttl_s=DAY)
        idempotency.answer(old, 201, {"n": 1})
        fresh = idempotency.claim(s, user_id=user, idem=_idem("fresh"), ttl_s=DAY)
        idempotency.answer(fresh, 201, {"n": 2})
        old.created_at = utcnow() - timedelta(hours=25)
        s.commit()
    with sm() as s:
        # an expired key is free again: the new request is carried out, not replayed
        again = idempotency.claim(s, user_id=user, idem=_idem("old", body={"b": 1}), ttl_s=DAY)
        idempotency.answer(again, 201, {"n": 3})
        s.commit()
    with sm() as s:
        s.get(IdempotencyKey, again.id).created_at = utcnow() - timedelta(hours=30)
        s.commit()
        assert idempotency.purge(s, ttl_s=DAY) == 1
        s.commit()
        assert [r.key for r in s.query(IdempotencyKey).all()] == ["fresh"]
