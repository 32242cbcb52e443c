"""Cross-site request forgery: a request that changes data on the strength of the browser's
session cookie must come from this site's own pages.

The browser says where a request comes from: ``Sec-Fetch-Site`` (sent by current browsers
to trustworthy origins such as https or localhost) must be ``same-origin``; where it is
absent (plain http on a LAN address), ``Origin`` must be this server's own origin (the Host
the request was sent to, or SVC_PUBLIC_URL's). SameSite=Strict alone lets through a page on
another port of the same host (same site, other origin), so it is not enough.

Requests with ``Authorization: Bearer`` are not checked: a page on another site cannot make
a browser add that header without a CORS preflight, which this server never grants. The
sign-in route is checked too where the browser sent either header (login CSRF would sign the
victim into the attacker's account); a client that is not a browser sends neither.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

from fastapi import Request
from fastapi.responses import JSONResponse, Response

from app.api.deps import COOKIE_NAME, bearer_token

UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
LOGIN_PATH = "/api/v1/auth/login"
DEFAULT_PORTS = {"http": 80, "https": 443}


def origin_of(url: str) -> str | None:
    """``scheme://host[:port]`` in lower case, the default port left out; None if not a URL."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in DEFAULT_PORTS or not parts.hostname:
        return None
    host = parts.hostname.lower()
    if ":" in host:  # an IPv6 literal
        host = f"[{host}]"
    if port is not None and port != DEFAULT_PORTS[parts.scheme]:
        host = f"{host}:{port}"
    return f"{parts.scheme}://{host}"


def own_origins(request: Request) -> set[str]:
    own = {origin_of(f"{request.url.scheme}://{request.headers.get('host', '')}")}
    own.add(origin_of(request.app.state.settings.public_url))
    return {o for o in own if o}


def cross_origin_reason(request: Request, *, required: bool) -> str | None:
    """Why this request is not from the site's own pages, or None when it is (or, with
    ``required`` false, when the browser said nothing)."""
    site = request.headers.get("sec-fetch-site")
    if site is not None:
        return None if site.strip().lower() == "same-origin" else f"Sec-Fetch-Site is {site!r}"
    origin = request.headers.get("origin")
    if origin is None:
        return "the request has neither an Origin nor a Sec-Fetch-Site header" if required else None
    if origin_of(origin) in own_origins(request):
        return None
    return f"it comes from {origin!r}"


async def same_origin_writes(
    request: Request, call_next: Callable[[Request], Awaitable[Response]]
) -> Response:
    if request.method in UNSAFE_METHODS and bearer_token(request) is None:
        reason = None
        if request.cookies.get(COOKIE_NAME):
            reason = cross_origin_reason(request, required=True)
        elif request.url.path == LOGIN_PATH:
            reason = cross_origin_reason(request, required=False)
        if reason is not None:
            return JSONResponse(
                status_code=403,
                content={
                    "detail": "Refused: this request would change data using the browser's "
                    f"session, but {reason}, so it may come from another site's page. Use "
                    "this server's own pages (set SVC_PUBLIC_URL to the address users open "
                    "when it runs behind a proxy), or send an Authorization: Bearer token."
                },
            )
    return await call_next(request)
