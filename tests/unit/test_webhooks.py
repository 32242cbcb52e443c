"""Signed webhooks (app/core/webhooks.py): the signature, the allow-list that keeps the
server from calling private addresses, the backoff schedule, and the delivery record on a
SQLite database with a fake receiver (and a real one on loopback)."""

from __future__ import annotations

import json
import threading
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from app.core import webhooks
from app.core.config import Settings
from app.core.db.models import Base, Job, JobStatus, User, utcnow
from app.core.db.session import get_engine, session_scope
from app.core.names import JobKind
from tests.common.services import sqlite_url


def settings(*hosts: str, **kw) -> Settings:
    return Settings(webhook_allow_hosts=list(hosts), **kw)


def resolver(table: dict[str, list[str]]):
    def resolve(host: str, port: int) -> list[str]:
        if host not in table:
            raise OSError("Name or service not known")
        return table[host]

    return resolve


# --- the signature ----------------------------------------------------------------------------


def test_the_signature_is_hmac_sha256_of_timestamp_dot_body():
    body = b'{"id":"evt"}'
    # a known vector: hmac.new(b"whsec_test", b"1700000000." + body, "sha256").hexdigest()
    expected = "a94cea056df1fbb92eadafcf2c5cd541dbe0c6ef736e4748202dd53f86694a3e"
    assert webhooks.sign("whsec_test", 1700000000, body) == expected
    assert webhooks.sign("whsec_test", "1700000000", body) == expected
    h = webhooks.headers_for("whsec_test", body, event_id="evt", attempt=2, now=1700000000.7)
    assert h["Svc-Webhook-Signature"] == f"sha256={expected}"
    assert h["Svc-Webhook-Timestamp"] == "1700000000"
    assert h["Svc-Webhook-Id"] == "evt" and h["Svc-Webhook-Attempt"] == "2"
    assert webhooks.verify("whsec_test", h, body, now=1700000010)
    assert not webhooks.verify("other", h, body, now=1700000010)
    assert not webhooks.verify("whsec_test", h, body + b" ", now=1700000010)
    assert not webhooks.verify("whsec_test", h, body, now=1700000000 + 3600)  # too old
    assert not webhooks.verify("whsec_test", {}, body)


# --- the allow-list -------------------------------------------------------------------------


def test_webhooks_are_off_without_an_allow_list():
    with pytest.raises(webhooks.WebhookRefused, match="turned off"):
        webhooks.check_url("https://hooks.example.com/x", settings())


def test_listed_names_with_public_addresses_are_allowed():
    s = settings("hooks.example.com", "*.example.org")
    dns = resolver(
        {
            "hooks.example.com": ["93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:8b2c"],
            "a.b.example.org": ["8.8.8.8"],
        }
    )
    t = webhooks.check_url("https://Hooks.Example.com./in?x=1#frag", s, resolver=dns)
    assert (t.scheme, t.host, t.port, t.path) == ("https", "hooks.example.com", 443, "/in?x=1")
    assert t.addresses == ("93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:8b2c")
    assert webhooks.check_url("http://a.b.example.org:8080", s, resolver=dns).port == 8080
    for url in ("https://example.org/", "https://evil.com/", "https://hooks.example.com.evil/"):
        with pytest.raises(webhooks.WebhookRefused, match="not allowed"):
            webhooks.check_url(url, s, resolver=dns)


@pytest.mark.parametrize(
    "address",
    ["127.0.0.1", "10.1.2.3", "192.168.0.10", "169.254.169.254", "::1", "fe80::1", "fc00::5",
     "0.0.0.0", "100.64.0.1", "224.0.0.1", "::ffff:127.0.0.1", "64:ff9b::7f00:1"],
)  # fmt: skip
def test_a_listed_name_resolving_to_a_private_address_is_refused_unless_the_address_is_listed(
    address,
):
    dns = resolver({"hooks.example.com": ["93.184.215.14", address]})
    with pytest.raises(webhooks.WebhookRefused, match="non-public"):
        webhooks.check_url("http://hooks.example.com/", settings("hooks.example.com"), resolver=dns)
    listed = settings("hooks.example.com", address)
    t = webhooks.check_url("http://hooks.example.com/", listed, resolver=dns)
    assert len(t.addresses) == 2


def test_addresses_and_ranges():
    s = settings("127.0.0.1", "10.0.0.0/8", "::1", "fd00::/8")
    assert webhooks.check_url("http://127.0.0.1:9000/hook", s).addresses == ("127.0.0.1",)
    assert webhooks.check_url("http://10.20.30.40/", s).addresses == ("10.20.30.40",)
    assert webhooks.check_url("http://[::1]:8080/", s).addresses == ("::1",)
    assert webhooks.check_url("http://[fd12::1]/", s).addresses == ("fd12::1",)
    # an IPv4-mapped IPv6 address is its IPv4 address
    assert webhooks.check_url("http://[::ffff:127.0.0.1]/", s).addresses == ("127.0.0.1",)
    for url in (
        "http://127.0.0.2/",
        "http://11.0.0.1/",
        "http://[::2]/",
        "http://[::ffff:127.0.0.2]/",
        "http://192.168.1.1/",
        "http://localhost/",  # a name, not listed (the addresses are)
        "http://2130706433/",  # 127.0.0.1 as a number: a name here, not listed
        "http://0x7f.1/",
        "http://127.1/",
    ):
        with pytest.raises(webhooks.WebhookRefused, match="not allowed"):
            webhooks.check_url(url, s, resolver=resolver({}))


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("ftp://127.0.0.1/", "http:// or https://"),
        ("file:///etc/passwd", "http:// or https://"),
        ("gopher://127.0.0.1:6379/_", "http:// or https://"),
        ("//127.0.0.1/", "http:// or https://"),
        ("127.0.0.1:80", "http:// or https://"),
        ("http://127.0.0.1@evil.com/", "user name"),
        ("http://evil.com@127.0.0.1/", "user name"),
        ("http://user:pw@127.0.0.1/", "user name"),
        ("http://127.0.0.1\\@evil.com/", "backslashes"),
        ("http://127.0.0.1 /", "spaces"),
        ("http://127.0.0.1/\r\nX: y", "control"),
        ("http://[fe80::1%25eth0]/", "name a host"),
        ("http://127.0.0.1:99999/", "valid URL"),
        ("http:///path", "name a host"),
        ("http://bücher.example/", "ASCII"),
        ("", "1 to"),
    ],
)
def test_tricks_are_refused(url, why):
    s = settings("127.0.0.1", "evil.com")
    with pytest.raises(webhooks.WebhookRefused, match=why):
        webhooks.check_url(url, s, resolver=resolver({"evil.com": ["93.184.215.14"]}))


def test_the_host_is_what_the_url_says_not_what_follows_a_fragment_or_query():
    for url in ("http://evil.com#@127.0.0.1/", "http://evil.com?@127.0.0.1/"):
        with pytest.raises(webhooks.WebhookRefused, match="'evil.com' is not allowed"):
            webhooks.check_url(url, settings("127.0.0.1"))


def test_an_unknown_name_is_refused_in_words():
    with pytest.raises(webhooks.WebhookRefused, match="could not be resolved"):
        webhooks.check_url("https://gone.example/", settings("gone.example"), resolver=resolver({}))


def test_the_allow_list_setting_takes_commas_or_json():
    s = Settings(webhook_allow_hosts=" 127.0.0.1, Hooks.Example.COM. ,10.0.0.0/8,[::1]")
    assert s.webhook_allow_hosts == ["127.0.0.1", "hooks.example.com", "10.0.0.0/8", "::1"]
    assert Settings(webhook_allow_hosts='["a.example", "::1/128"]').webhook_allow_hosts == [
        "a.example",
        "::1/128",
    ]
    assert Settings(webhook_allow_hosts="").webhook_allow_hosts == []
    with pytest.raises(ValueError, match="not a host name"):
        Settings(webhook_allow_hosts="http://x/")


# --- backoff --------------------------------------------------------------------------------


def test_backoff_grows_and_gives_up_about_an_hour_after_the_job_ended():
    ended = utcnow()
    now, times = ended, [0.0]
    while (nxt := webhooks.next_attempt_at(ended, len(times), now, 3600)) is not None:
        now = nxt
        times.append((now - ended).total_seconds())
    assert times == [0, 10, 40, 100, 220, 520, 1120, 2320, 3520]
    assert times[-1] <= 3600
    # a slow receiver does not stretch it
    assert webhooks.next_attempt_at(ended, 3, ended + timedelta(seconds=3595), 3600) is None


# --- delivery ---------------------------------------------------------------------------------


@pytest.fixture
def db(tmp_path):
    url = sqlite_url(tmp_path / "hooks.db")
    Base.metadata.create_all(get_engine(url))
    with session_scope(url) as s:
        s.add(User(id="u1", name="u1", webhook_secret="sekrit"))
    return url


def ended_job(url: str, *, status=JobStatus.succeeded, hook="http://127.0.0.1:9/h", ago=0.0):
    with session_scope(url) as s:
        job = Job(
            user_id="u1",
            kind=JobKind.ingest,
            status=status,
            stages=["ingest"],
            stage="ingest",
            webhook_url=hook,
            finished_at=utcnow() - timedelta(seconds=ago),
        )
        s.add(job)
        s.flush()
        return job.id, job.finished_at


def record(url: str, job_id: str) -> dict:
    with session_scope(url) as s:
        job = s.get(Job, job_id)
        assert job is not None
        return job.webhook or {}


class Receiver:
    """A fake ``send``: answers the codes given, in turn, and keeps what it got."""

    def __init__(self, *codes: int) -> None:
        self.codes, self.got = list(codes), []

    def __call__(self, target, headers, body, timeout):
        self.got.append((target, headers, json.loads(body), body))
        code = self.codes.pop(0) if self.codes else 200
        if code == 0:
            raise TimeoutError("timed out")
        return code


def test_a_failed_attempt_is_retried_after_its_backoff_and_delivered_once(db):
    s = settings("127.0.0.1")
    job_id, ended = ended_job(db)
    scope = lambda: session_scope(db)  # noqa: E731
    recv = Receiver(500, 200)
    assert webhooks.deliver_due(scope, s, now=ended, send=recv) == [(job_id, "retry")]
    rec = record(db, job_id)
    assert rec["state"] == "pending" and len(rec["attempts"]) == 1
    assert rec["attempts"][0]["status_code"] == 500 and "500" in rec["attempts"][0]["error"]
    # not yet due; then due
    assert webhooks.deliver_due(scope, s, now=ended + timedelta(seconds=5), send=recv) == []
    later = ended + timedelta(seconds=11)
    assert webhooks.deliver_due(scope, s, now=later, send=recv) == [(job_id, "delivered")]
    assert webhooks.deliver_due(scope, s, now=later + timedelta(hours=0.5), send=recv) == []
    rec = record(db, job_id)
    assert rec["state"] == "delivered" and [a["status_code"] for a in rec["attempts"]] == [500, 200]
    assert len(recv.got) == 2
    (t1, h1, e1, b1), (_, h2, e2, b2) = recv.got
    assert t1.addresses == ("127.0.0.1",) and t1.port == 9 and t1.path == "/h"
    assert h1["Svc-Webhook-Id"] == h2["Svc-Webhook-Id"] == e1["id"] == rec["event_id"]
    assert (h1["Svc-Webhook-Attempt"], h2["Svc-Webhook-Attempt"]) == ("1", "2")
    assert webhooks.verify("sekrit", h2, b2)
    assert e2["type"] == "job.succeeded" and e2["job"]["id"] == job_id
    assert e2["job"]["status"] == "succeeded" and e2["artifacts"] == []


def test_a_retried_job_that_ends_again_is_a_new_event(db):
    s = settings("127.0.0.1")
    job_id, ended = ended_job(db)
    scope = lambda: session_scope(db)  # noqa: E731
    recv = Receiver(200, 200)
    assert webhooks.deliver_due(scope, s, now=ended, send=recv) == [(job_id, "delivered")]
    with session_scope(db) as ses:  # what the retry route does (NewJobs.send), then it ends
        job = ses.get(Job, job_id)
        assert job is not None
        job.webhook = None
        job.status = JobStatus.failed
        job.finished_at = again = ended + timedelta(minutes=5)
    assert webhooks.deliver_due(scope, s, now=again, send=recv) == [(job_id, "delivered")]
    (_, h1, e1, _), (_, h2, e2, _) = recv.got
    assert h1["Svc-Webhook-Id"] != h2["Svc-Webhook-Id"]
    assert (e1["type"], e2["type"]) == ("job.succeeded", "job.failed")
    assert len(record(db, job_id)["attempts"]) == 1


def test_no_answer_within_the_hour_gives_up(db):
    s = settings("127.0.0.1")
    job_id, ended = ended_job(db, status=JobStatus.failed)
    scope = lambda: session_scope(db)  # noqa: E731
    recv = Receiver(*[0] * 20)
    outcomes, now = [], ended
    for _ in range(800):  # 5 s steps through the hour and a bit
        outcomes += [o for _, o in webhooks.deliver_due(scope, s, now=now, send=recv)]
        now += timedelta(seconds=5)
    assert outcomes == ["retry"] * 8 + ["gave_up"]
    rec = record(db, job_id)
    assert rec["state"] == "gave_up" and len(rec["attempts"]) == 9
    assert all("TimeoutError" in a["error"] for a in rec["attempts"])
    assert recv.got[0][2]["type"] == "job.failed"


def test_one_claim_wins_and_old_or_unhooked_jobs_are_left_alone(db):
    s = settings("127.0.0.1")
    job_id, ended = ended_job(db, status=JobStatus.cancelled)
    ended_job(db, hook=None)  # no webhook
    ended_job(db, ago=2 * 3600)  # ended before the window
    ended_job(db, status=JobStatus.running)  # not ended
    # two workers read the same record; the first conditional UPDATE wins
    claim = {"v": 1, "state": "sending", "ended_at": ended.isoformat(), "attempts": []}
    scope = lambda: session_scope(db)  # noqa: E731
    assert webhooks._write(scope, job_id, ended, None, claim)
    assert not webhooks._write(scope, job_id, ended, None, {**claim, "worker": "other"})
    assert record(db, job_id)["v"] == 1
    # its worker died while sending: after the lease another takes it over
    recv = Receiver(204)
    assert webhooks.deliver_due(scope, s, now=ended, send=recv) == [(job_id, "delivered")]
    assert len(recv.got) == 1 and recv.got[0][2]["type"] == "job.cancelled"


def test_a_url_no_longer_allowed_is_not_called(db):
    job_id, ended = ended_job(db, hook="http://10.0.0.1/h")
    recv = Receiver()
    scope = lambda: session_scope(db)  # noqa: E731
    assert webhooks.deliver_due(scope, settings("127.0.0.1"), now=ended, send=recv) == [
        (job_id, "retry")
    ]
    assert recv.got == []
    assert "not allowed" in record(db, job_id)["attempts"][0]["error"]


def test_post_goes_to_the_checked_address_and_follows_no_redirect():
    seen: list[tuple[str, str | None, bytes]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802
            n = int(self.headers["Content-Length"])
            seen.append((self.path, self.headers["Host"], self.rfile.read(n)))
            self.send_response(302 if self.path == "/move" else 204)
            self.send_header("Location", "/elsewhere")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        port = server.server_address[1]
        s = settings("hooks.test", "127.0.0.1")
        dns = resolver({"hooks.test": ["127.0.0.1"]})
        target = webhooks.check_url(f"http://hooks.test:{port}/in?a=1", s, resolver=dns)
        assert webhooks.post(target, {"X": "1"}, b"{}", 5) == 204
        target = webhooks.check_url(f"http://127.0.0.1:{port}/move", s)
        assert webhooks.post(target, {}, b"[]", 5) == 302
        assert seen == [
            ("/in?a=1", f"hooks.test:{port}", b"{}"),
            ("/move", f"127.0.0.1:{port}", b"[]"),
        ]
    finally:
        server.shutdown()
        server.server_close()
