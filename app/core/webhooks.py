"""Signed webhooks: when a job that names a ``webhook_url`` ends (succeeded, failed or
cancelled), the workers POST a JSON event about it to that URL.

- **Signature.** ``Svc-Webhook-Signature: sha256=<hex>`` is the HMAC-SHA256, keyed by the
  user's webhook secret, of ``f"{timestamp}."`` followed by the raw body, where ``timestamp``
  is the ``Svc-Webhook-Timestamp`` header (Unix seconds). ``Svc-Webhook-Id`` names the event:
  the same id on every attempt, so a receiver can drop a repeat.
- **Delivery.** Database-driven (``deliver_due``, run by every worker's background loop), so
  it survives a broker outage and worker restarts. A 2xx answer is a delivery; anything else
  (or no answer within ``webhook_timeout_s``) is tried again after 10 s, 30 s, 1, 2, 5, 10,
  20, 20… minutes until ``webhook_give_up_s`` (an hour) after the job ended. Redirects are
  not followed. Every attempt is recorded in ``Job.webhook``. A worker takes a delivery with
  one conditional UPDATE of that record, so two workers never send the same attempt.
- **SSRF guard.** Only hosts listed in ``SVC_WEBHOOK_ALLOW_HOSTS`` are called (``check_url``),
  when the job is submitted and again before every attempt; a private, loopback, link-local
  or otherwise special address is called only when it is listed itself. The connection goes
  to the address that was checked (no second DNS lookup), without proxies.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import ipaddress
import json
import logging
import secrets
import socket
import ssl
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast
from urllib.parse import urlsplit

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from app.core.config import Settings
from app.core.db import crud
from app.core.db.models import Artifact, Job, User, utcnow
from app.core.jobstate import TERMINAL

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "Svc-Webhook-Signature"
TIMESTAMP_HEADER = "Svc-Webhook-Timestamp"
ID_HEADER = "Svc-Webhook-Id"
ATTEMPT_HEADER = "Svc-Webhook-Attempt"
USER_AGENT = "svc-studio-webhooks/1"
#: waits after the 1st, 2nd, … failed attempt (the last repeats) until the give-up time
BACKOFF_S: tuple[float, ...] = (10, 30, 60, 120, 300, 600, 1200)
MAX_URL = 2000

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Scope = Callable[[], AbstractContextManager[Session]]


class WebhookRefused(ValueError):
    """The URL may not be called; the message says why, in plain words."""


def new_secret() -> str:
    return secrets.token_urlsafe(32)


# --- the allow-list -------------------------------------------------------------------------


_MAPPED = ipaddress.IPv6Network("::ffff:0:0/96")


@dataclass(frozen=True)
class AllowList:
    names: frozenset[str]  # exact host names
    suffixes: tuple[str, ...]  # ".example.com" from "*.example.com"
    networks: tuple[Network, ...]  # addresses (as /32, /128) and CIDR ranges

    @classmethod
    def parse(cls, entries: Iterable[str]) -> AllowList:
        names, suffixes, networks = set(), [], []
        for raw in entries:
            e = raw.strip().lower().rstrip(".")
            if e[:1] == "[" and e[-1:] == "]":
                e = e[1:-1]
            if not e:
                continue
            try:
                net = ipaddress.ip_network(e, strict=False)
                networks.append(net)
                if isinstance(net, ipaddress.IPv6Network) and net.subnet_of(_MAPPED):
                    # addresses are compared in their IPv4 form (``_address``)
                    v4 = int(net.network_address) & 0xFFFFFFFF
                    networks.append(ipaddress.IPv4Network((v4, net.prefixlen - 96)))
            except ValueError:
                if e.startswith("*."):
                    suffixes.append(e[1:])
                else:
                    names.add(e)
        return cls(frozenset(names), tuple(suffixes), tuple(networks))

    def __bool__(self) -> bool:
        return bool(self.names or self.suffixes or self.networks)

    def allows_name(self, host: str) -> bool:
        return host in self.names or any(host.endswith(s) for s in self.suffixes)

    def lists(self, addr: Address) -> bool:
        return any(addr in net for net in self.networks)


def _address(text: str) -> Address | None:
    """An IP address literal (an IPv4-mapped IPv6 address as its IPv4 address), else None."""
    try:
        addr = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    return addr


_NAT64 = ipaddress.ip_network("64:ff9b::/96")


def _embedded(addr: Address) -> list[ipaddress.IPv4Address]:
    """IPv4 addresses an IPv6 address leads to (6to4, Teredo, NAT64)."""
    if not isinstance(addr, ipaddress.IPv6Address):
        return []
    found = [a for a in (addr.sixtofour, *(addr.teredo or ())) if a is not None]
    if addr in _NAT64:
        found.append(ipaddress.IPv4Address(int(addr) & 0xFFFFFFFF))
    return found


def is_special(addr: Address) -> bool:
    """Private, loopback, link-local, multicast, reserved, unspecified or otherwise not a
    public internet address (or an IPv6 address leading to one)."""
    return any(is_special(a) for a in _embedded(addr)) or (
        addr.is_private
        or addr.is_loopback
        or addr.is_link_local
        or addr.is_multicast
        or addr.is_reserved
        or addr.is_unspecified
        or not addr.is_global
    )


@dataclass(frozen=True)
class Target:
    """A checked URL: where to connect (the checked addresses) and what to ask for."""

    url: str
    scheme: str
    host: str
    port: int
    path: str  # path and query
    addresses: tuple[str, ...]


Resolver = Callable[[str, int], Sequence[str]]


def resolve(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def check_url(url: str, settings: Settings, *, resolver: Resolver = resolve) -> Target:
    """The URL if the server may call it, else ``WebhookRefused`` saying why: http or https,
    no user name or password, a host in ``SVC_WEBHOOK_ALLOW_HOSTS``, and every address the
    host resolves to public unless that address (or its range) is listed itself."""
    allow = AllowList.parse(settings.webhook_allow_hosts)
    if not allow:
        raise WebhookRefused(
            "Webhooks are turned off on this server (SVC_WEBHOOK_ALLOW_HOSTS is empty)."
        )
    if not url or len(url) > MAX_URL:
        raise WebhookRefused(f"A webhook URL must have 1 to {MAX_URL} characters.")
    if any(c.isspace() or ord(c) < 32 or ord(c) == 127 or c == "\\" for c in url):
        raise WebhookRefused(
            "A webhook URL must not contain spaces, control characters or backslashes."
        )
    if not url.isascii():
        raise WebhookRefused("A webhook URL must be ASCII (write an international name in IDNA).")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise WebhookRefused(f"That is not a valid URL: {exc}.") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise WebhookRefused("A webhook URL must start with http:// or https://.")
    if "@" in parts.netloc:
        raise WebhookRefused("A webhook URL must not contain a user name or password.")
    host = (parts.hostname or "").rstrip(".")
    if not host or "%" in host:
        raise WebhookRefused("A webhook URL must name a host.")
    port = port or (443 if scheme == "https" else 80)
    refused = (
        f"The webhook host '{host}' is not allowed on this server "
        "(ask the administrator to add it to SVC_WEBHOOK_ALLOW_HOSTS)."
    )
    literal = _address(host)
    if literal is not None:
        if not allow.lists(literal):
            raise WebhookRefused(refused)
        addresses: tuple[str, ...] = (str(literal),)
    else:
        if not allow.allows_name(host):
            raise WebhookRefused(refused)
        try:
            found = resolver(host, port)
        except (OSError, UnicodeError) as exc:
            raise WebhookRefused(
                f"The webhook host '{host}' could not be resolved: {exc}."
            ) from None
        if not found:
            raise WebhookRefused(f"The webhook host '{host}' could not be resolved.")
        checked = []
        for text in found:
            addr = _address(text.split("%", 1)[0])
            if addr is None or (is_special(addr) and not allow.lists(addr)):
                raise WebhookRefused(
                    f"The webhook host '{host}' resolves to {text}, a private, loopback or "
                    "otherwise non-public address, which this server calls only when the "
                    "address itself is in SVC_WEBHOOK_ALLOW_HOSTS."
                )
            checked.append(str(addr))
        addresses = tuple(checked)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return Target(url, scheme, host, port, path, addresses)


# --- the signature ----------------------------------------------------------------------------


def sign(secret: str, timestamp: int | str, body: bytes) -> str:
    """HMAC-SHA256 (hex) of ``f"{timestamp}."`` + body, keyed by the secret (UTF-8)."""
    msg = f"{timestamp}.".encode() + body
    return hmac.new(secret.encode(), msg, hashlib.sha256).hexdigest()


def headers_for(secret: str, body: bytes, *, event_id: str, attempt: int, now: float) -> dict:
    ts = int(now)
    return {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        ID_HEADER: event_id,
        ATTEMPT_HEADER: str(attempt),
        TIMESTAMP_HEADER: str(ts),
        SIGNATURE_HEADER: f"sha256={sign(secret, ts, body)}",
    }


def verify(
    secret: str,
    headers: Mapping[str, str],
    body: bytes,
    *,
    tolerance_s: float = 300,
    now: float | None = None,
) -> bool:
    """What a receiver does: the signature matches and the timestamp is recent."""
    lower = {k.lower(): v for k, v in headers.items()}
    ts, sig = lower.get(TIMESTAMP_HEADER.lower(), ""), lower.get(SIGNATURE_HEADER.lower(), "")
    if not ts.isdigit() or not sig.startswith("sha256="):
        return False
    if abs((time.time() if now is None else now) - int(ts)) > tolerance_s:
        return False
    return hmac.compare_digest(sig.removeprefix("sha256="), sign(secret, ts, body))


# --- the event ------------------------------------------------------------------------------


def _iso(dt: datetime | None) -> str | None:
    return dt.isoformat() if dt is not None else None


def _parse(text: Any) -> datetime | None:
    return datetime.fromisoformat(text) if isinstance(text, str) else None


def job_fields(job: Job) -> dict[str, Any]:
    return {
        "id": job.id,
        "kind": str(job.kind),
        "status": str(job.status),
        "stages": list(job.stages),
        "stage": None if job.stage is None else str(job.stage),
        "message": job.message,
        "error": job.error,
        "attempts": job.attempts,
        "params": job.params,
        "metrics": job.metrics,
        "voice_id": job.voice_id,
        "conversion_id": job.conversion_id,
        "created_at": _iso(job.created_at),
        "started_at": _iso(job.started_at),
        "finished_at": _iso(job.finished_at),
        "url": f"/api/v1/jobs/{job.id}",
    }


def artifact_fields(a: Artifact) -> dict[str, Any]:
    return {
        "id": a.id,
        "kind": str(a.kind),
        "filename": a.filename,
        "content_type": a.content_type,
        "size_bytes": a.size_bytes,
        "sha256": a.sha256,
        "stage": None if a.stage is None else str(a.stage),
        "track_id": a.track_id,
        "voice_id": a.voice_id,
        "conversion_id": a.conversion_id,
        "created_at": _iso(a.created_at),
        "download_url": f"/api/v1/artifacts/{a.id}/download",
    }


def job_artifacts(session: Session, job: Job) -> list[Artifact]:
    """What the job made, and for a conversion's job the conversion's files (an earlier
    job's stages that it reused included)."""
    found = list(crud.list_artifacts(session, user_id=job.user_id, job_id=job.id))
    if job.conversion_id:
        found += crud.list_artifacts(session, user_id=job.user_id, conversion_id=job.conversion_id)
    unique = {a.id: a for a in found}
    return sorted(unique.values(), key=lambda a: (a.created_at, a.id))


def event_for(session: Session, job: Job, *, event_id: str | None = None) -> dict[str, Any]:
    """The JSON event about an ended job."""
    return {
        "id": event_id or job.id,
        "type": f"job.{job.status}",
        "created_at": _iso(utcnow()),
        "job": job_fields(job),
        "artifacts": [artifact_fields(a) for a in job_artifacts(session, job)],
    }


def encode(event: dict[str, Any]) -> bytes:
    return json.dumps(event, separators=(",", ":"), default=str).encode()


# --- sending --------------------------------------------------------------------------------


def _connect(addresses: Sequence[str], port: int, timeout: float) -> socket.socket:
    last: OSError | None = None
    for addr in addresses:
        try:
            return socket.create_connection((addr, port), timeout=timeout)
        except OSError as exc:
            last = exc
    raise last or OSError("no address to connect to")


class _PinnedHTTP(http.client.HTTPConnection):
    """An HTTP connection to the checked addresses, with the URL's host name in ``Host``."""

    def __init__(self, target: Target, timeout: float) -> None:
        super().__init__(target.host, target.port, timeout=timeout)
        self._addresses = target.addresses
        self._timeout_s = timeout

    def connect(self) -> None:
        self.sock = _connect(self._addresses, self.port, self._timeout_s)


class _PinnedHTTPS(http.client.HTTPSConnection):
    """TLS to the checked addresses; the certificate is checked against the host name."""

    def __init__(self, target: Target, timeout: float) -> None:
        self._tls = ssl.create_default_context()
        super().__init__(target.host, target.port, timeout=timeout, context=self._tls)
        self._addresses = target.addresses
        self._timeout_s = timeout

    def connect(self) -> None:
        sock = _connect(self._addresses, self.port, self._timeout_s)
        self.sock = self._tls.wrap_socket(sock, server_hostname=self.host)


Sender = Callable[[Target, dict, bytes, float], int]


def post(target: Target, headers: dict, body: bytes, timeout: float) -> int:
    """POST the body; the answer's status code (redirects are answers, not followed)."""
    conn_cls = _PinnedHTTPS if target.scheme == "https" else _PinnedHTTP
    conn = conn_cls(target, timeout)
    try:
        conn.request("POST", target.path, body=body, headers=headers)
        return conn.getresponse().status
    finally:
        conn.close()


# --- the delivery record and schedule -----------------------------------------------------------


def next_attempt_at(
    ended_at: datetime, failures: int, now: datetime, give_up_s: float
) -> datetime | None:
    """When to try again after ``failures`` failed attempts; None once that would be later
    than ``give_up_s`` after the job ended."""
    delay = BACKOFF_S[min(max(failures, 1), len(BACKOFF_S)) - 1]
    at = now + timedelta(seconds=delay)
    return at if at <= ended_at + timedelta(seconds=give_up_s) else None


def _version() -> Any:
    # the record's version, read in SQL (JSON_EXTRACT on SQLite, ->> on PostgreSQL)
    return cast(Any, Job.webhook)["v"].as_integer()


def _state() -> Any:
    return cast(Any, Job.webhook)["state"].as_string()


def _due(record: dict[str, Any] | None, ended: datetime, now: datetime) -> bool:
    if not record or record.get("ended_at") != _iso(ended):
        return True  # never tried for this ending
    state = record.get("state")
    if state == "pending":
        at = _parse(record.get("next_at"))
        return at is None or at <= now
    if state == "sending":  # its worker died while sending: after its lease, send again
        until = _parse(record.get("lease_until"))
        return until is None or until <= now
    return False


def _write(
    scope: Scope, job_id: str, ended: datetime, old_v: int | None, record: dict[str, Any]
) -> bool:
    """Replace the record if it is still version ``old_v`` and the job still has the same
    ending: the one UPDATE that decides which worker sends an attempt."""
    guard = _version().is_(None) if old_v is None else _version() == old_v
    with scope() as s:
        res = s.execute(
            update(Job)
            .where(Job.id == job_id, Job.status.in_(TERMINAL), Job.finished_at == ended, guard)
            .values(webhook=record, updated_at=Job.updated_at)  # the job itself is unchanged
            .execution_options(synchronize_session=False)
        )
        return bool(res.rowcount)  # type: ignore[attr-defined]


def deliver_due(
    scope: Scope,
    settings: Settings,
    *,
    now: datetime | None = None,
    worker: str = "",
    send: Sender = post,
    limit: int = 50,
) -> list[tuple[str, str]]:
    """Send the events that are due (a new ending, or a retry whose time came) and record
    each attempt; ``(job_id, outcome)`` per attempt made: delivered, retry or gave_up.
    ``now`` fixes the clock (tests); by default each attempt reads it."""
    fixed = now
    now = now or utcnow()
    window = timedelta(seconds=settings.webhook_give_up_s + 600)
    with scope() as s:
        rows = s.execute(
            select(Job.id, Job.finished_at, Job.webhook)
            .where(
                Job.status.in_(TERMINAL),
                Job.webhook_url.is_not(None),
                Job.finished_at.is_not(None),
                Job.finished_at >= now - window,
                or_(_state().is_(None), _state().in_(("pending", "sending"))),
            )
            .order_by(Job.finished_at)
        ).all()
    done: list[tuple[str, str]] = []
    for job_id, ended, record in rows:
        if len(done) >= limit:
            break
        at = fixed or utcnow()
        if not _due(record, ended, at):
            continue
        outcome = _deliver_one(
            scope, settings, job_id, ended, record, now=at, worker=worker, send=send
        )
        if outcome is not None:
            done.append((job_id, outcome))
    return done


def _deliver_one(
    scope: Scope,
    settings: Settings,
    job_id: str,
    ended: datetime,
    old: dict[str, Any] | None,
    *,
    now: datetime,
    worker: str,
    send: Sender,
) -> str | None:
    """Take the delivery (or learn another worker has), send one attempt, record it."""
    old_v = old.get("v") if old else None
    if old and old.get("ended_at") == _iso(ended):
        record = dict(old)
    else:  # the first attempt for this ending of the job
        record = {"ended_at": _iso(ended)}
    record.setdefault("event_id", uuid.uuid4().hex)
    record.setdefault("attempts", [])
    lease = timedelta(seconds=60 + 4 * settings.webhook_timeout_s)
    record.update(
        v=int(old_v or 0) + 1,
        state="sending",
        worker=worker,
        lease_until=_iso(now + lease),
        next_at=None,
    )
    if not _write(scope, job_id, ended, old_v, record):
        return None  # another worker took it, or the job changed
    with scope() as s:
        job = s.get(Job, job_id)
        user = s.get(User, job.user_id) if job is not None else None
        if job is None or user is None:
            return None
        url, secret = job.webhook_url or "", user.webhook_secret
        body = encode(event_for(s, job, event_id=record["event_id"]))
    attempts = list(record["attempts"])
    started = time.monotonic()
    code: int | None = None
    try:
        target = check_url(url, settings)
        if not secret:
            raise WebhookRefused("The user has no webhook secret, so the event cannot be signed.")
        headers = headers_for(
            secret, body, event_id=record["event_id"], attempt=len(attempts) + 1, now=time.time()
        )
        code = send(target, headers, body, settings.webhook_timeout_s)
        error = None if 200 <= code < 300 else f"answered HTTP {code}"
    except WebhookRefused as exc:
        error = str(exc)
    except (OSError, http.client.HTTPException) as exc:
        error = (f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__)[:500]
    except Exception as exc:  # noqa: BLE001 - recorded and retried like any failure
        log.exception("webhook of job %s", job_id)
        error = f"{type(exc).__name__}: {exc}"[:500]
    at = now + timedelta(seconds=time.monotonic() - started)
    attempts.append(
        {
            "at": _iso(now),
            "status_code": code,
            "error": error,
            "ms": round((time.monotonic() - started) * 1000),
        }
    )
    if error is None:
        outcome, nxt = "delivered", None
    else:
        nxt = next_attempt_at(ended, len(attempts), at, settings.webhook_give_up_s)
        outcome = "retry" if nxt is not None else "gave_up"
    final = {
        **record,
        "v": record["v"] + 1,
        "state": "pending" if outcome == "retry" else outcome,
        "attempts": attempts,
        "next_at": _iso(nxt),
        "lease_until": None,
        "delivered_at": _iso(at) if outcome == "delivered" else record.get("delivered_at"),
    }
    if not _write(scope, job_id, ended, record["v"], final):
        log.warning("webhook of job %s: the job changed while its event was sent", job_id)
    level = logging.INFO if error is None else logging.WARNING
    log.log(level, "webhook of job %s: %s (%s)", job_id, outcome, error or code)
    return outcome
