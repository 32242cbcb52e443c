"""The browser's session, CSRF and the throttling of failed authentication (issue 13 item 4).

The app runs in-process on SQLite (TestClient speaks HTTP to it through ASGI); client
addresses are chosen per test so that each throttling bucket is its own."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from app.api.csrf import origin_of
from app.api.main import create_app
from app.api.throttle import FailureThrottle
from app.cli import upgrade_db
from app.core.config import Settings
from app.core.db import crud
from app.core.db.models import ApiToken, BrowserSession, utcnow
from app.core.db.session import session_scope

OWN = "http://testserver"  # TestClient's Host


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    data = tmp_path_factory.mktemp("auth")
    url = f"sqlite:///{data / 'svc.db'}"
    upgrade_db(url)
    return create_app(
        Settings(data_dir=data, database_url=url, public_url="http://studio.example:8080")
    )


_clients = iter(range(1, 10_000))


def client(app, address: str | None = None) -> TestClient:
    """A client of its own address (its own throttling bucket) and cookie jar."""
    return TestClient(app, client=(address or f"10.0.0.{next(_clients)}", 50000))


def new_user(app, name: str) -> str:
    with session_scope(app.state.settings.database_url) as s:
        user = crud.create_user(s, name=name)
        return crud.create_token(s, user=user, pepper=app.state.settings.token_pepper)


def signed_in(app, name: str) -> tuple[TestClient, str]:
    token = new_user(app, name)
    c = client(app)
    r = c.post("/api/v1/auth/login", json={"token": token}, headers={"Origin": OWN})
    assert r.status_code == 200, r.text
    return c, token


def test_the_cookie_is_a_session_that_logout_revokes(app):
    c, token = signed_in(app, "cora")
    secret = c.cookies["svc_session"]
    assert secret.startswith("svcs_") and token not in secret
    assert c.get("/api/v1/me").json()["name"] == "cora"
    # only a hash of the session id is stored
    with session_scope(app.state.settings.database_url) as s:
        hashes = s.scalars(select(BrowserSession.secret_hash)).all()
    assert hashes and secret not in hashes
    assert c.post("/api/v1/auth/logout", headers={"Origin": OWN}).status_code == 204
    # a copy of the cookie taken before the logout is worthless afterwards
    thief = client(app)
    thief.cookies.set("svc_session", secret)
    r = thief.get("/api/v1/me")
    assert r.status_code == 401 and "session has ended" in r.json()["detail"]
    assert 'svc_session=""' in r.headers["set-cookie"] or "svc_session=;" in r.headers["set-cookie"]
    # the token itself still works for the API
    assert thief.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"}).status_code == 200


def test_a_revoked_token_or_an_expired_session_ends_the_browser_session(app):
    c, token = signed_in(app, "dana")
    assert c.get("/api/v1/me").status_code == 200
    url = app.state.settings.database_url
    with session_scope(url) as s:
        s.execute(update(BrowserSession).values(expires_at=utcnow()))
    assert c.get("/api/v1/me").status_code == 401

    c, token = signed_in(app, "dana2")
    with session_scope(url) as s:
        s.execute(update(ApiToken).where(ApiToken.prefix == token[:8]).values(revoked_at=utcnow()))
    assert c.get("/api/v1/me").status_code == 401
    again = client(app).post("/api/v1/auth/login", json={"token": token})
    assert again.status_code == 401


@pytest.mark.parametrize(
    "headers",
    [
        {},  # neither header: not from one of this site's pages
        {"Origin": "http://testserver:8081"},  # another port of the same host: same site
        {"Origin": "https://evil.example"},
        {"Origin": "null"},
        {"Sec-Fetch-Site": "same-site", "Origin": OWN},  # Sec-Fetch-Site is what counts
        {"Sec-Fetch-Site": "cross-site"},
    ],
    ids=["none", "other-port", "other-site", "null", "same-site", "cross-site"],
)
def test_a_cookie_write_from_another_origin_is_refused(app, headers):
    c, _ = signed_in(app, f"eve-{len(headers)}-{abs(hash(str(headers))) % 10_000}")
    before = c.get("/api/v1/voices").json()
    r = c.post("/api/v1/voices", json={"name": "planted"}, headers=headers)
    assert r.status_code == 403, r.text
    assert "another site" in r.json()["detail"] and r.headers["x-content-type-options"]
    assert c.delete("/api/v1/voices/x", headers=headers).status_code == 403
    assert c.get("/api/v1/voices").json() == before  # nothing was created


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": OWN},
        {"Origin": "http://studio.example:8080"},  # SVC_PUBLIC_URL (behind a proxy)
        {"Origin": "http://testserver:80"},
        {"Sec-Fetch-Site": "same-origin"},
    ],
)
def test_a_cookie_write_from_the_own_pages_passes(app, headers):
    c, _ = signed_in(app, f"ivy-{abs(hash(str(headers))) % 10_000}")
    r = c.post("/api/v1/voices", json={"name": "mine"}, headers=headers)
    assert r.status_code == 201, r.text


def test_bearer_requests_and_reads_are_not_checked(app):
    token = new_user(app, "api-user")
    c = client(app)
    auth = {"Authorization": f"Bearer {token}", "Origin": "https://elsewhere.example"}
    assert c.post("/api/v1/voices", json={"name": "scripted"}, headers=auth).status_code == 201
    c2, _ = signed_in(app, "reader")
    assert c2.get("/api/v1/voices", headers={"Origin": "https://evil.example"}).status_code == 200


def test_login_from_another_site_is_refused(app):
    token = new_user(app, "lou")
    r = client(app).post(
        "/api/v1/auth/login", json={"token": token}, headers={"Origin": "https://evil.example"}
    )
    assert r.status_code == 403
    assert "set-cookie" not in r.headers


def test_failed_authentication_is_throttled_per_client(app):
    burst = app.state.settings.auth_failure_burst
    token = new_user(app, "tess")
    attacker = client(app, "192.0.2.7")
    codes = [
        attacker.get("/api/v1/voices", headers={"Authorization": f"Bearer svc_guess{i}"})
        for i in range(burst + 3)
    ]
    assert [r.status_code for r in codes[:burst]] == [401] * burst
    blocked = codes[burst]
    assert blocked.status_code == 429, blocked.text
    assert int(blocked.headers["retry-after"]) >= 1 and "Try again" in blocked.json()["detail"]
    # failed logins count too, and while blocked even a good token waits (it is not checked)
    r = attacker.post("/api/v1/auth/login", json={"token": token})
    assert r.status_code == 429
    assert (
        attacker.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"}).status_code == 429
    )
    # requests without credentials and other clients are not affected
    assert attacker.get("/api/v1/health").status_code == 200
    other = client(app, "192.0.2.8")
    assert other.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"}).status_code == 200


def test_failed_logins_alone_reach_the_limit(app):
    burst = app.state.settings.auth_failure_burst
    c = client(app, "192.0.2.9")
    codes = [
        c.post("/api/v1/auth/login", json={"token": f"svc_nope-{i}"}).status_code
        for i in range(burst + 1)
    ]
    assert codes == [401] * burst + [429]


def test_the_throttle_drains_and_stays_bounded():
    now = [0.0]
    t = FailureThrottle(burst=3, per_minute=6, max_clients=5, clock=lambda: now[0])
    for _ in range(3):
        assert t.retry_after("a") is None
        t.failed("a")
    assert t.retry_after("a") == 10  # one failure drains in 10 s at 6 a minute
    now[0] += 9.0
    assert t.retry_after("a") == 1
    now[0] += 1.0
    assert t.retry_after("a") is None
    for i in range(20):
        t.failed(f"c{i}")
    assert len(t) <= 5
    with pytest.raises(ValueError):
        FailureThrottle(burst=0, per_minute=1)


def test_the_spec_documents_403_and_429(app):
    spec = client(app).get("/api/v1/openapi.json").json()
    post = spec["paths"]["/api/v1/voices"]["post"]["responses"]
    get = spec["paths"]["/api/v1/voices"]["get"]["responses"]
    assert "403" in post and "429" in post and "429" in get and "403" not in get
    assert "429" in spec["paths"]["/api/v1/auth/login"]["post"]["responses"]


@pytest.mark.parametrize(
    ("url", "origin"),
    [
        ("http://Host:80/x", "http://host"),
        ("https://host:443", "https://host"),
        ("https://host:8443/", "https://host:8443"),
        ("http://[::1]:8000", "http://[::1]:8000"),
        ("ftp://host", None),
        ("null", None),
        ("http://host:99999", None),
    ],
)
def test_origin_of(url, origin):
    assert origin_of(url) == origin
