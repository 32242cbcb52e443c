"""The FastAPI application. Never imports torch or model code: it enqueues work by task name."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi_offline import FastAPIOffline
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema
from sqlalchemy.exc import DataError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from app.api.csrf import UNSAFE_METHODS, same_origin_writes
from app.api.routes import (
    artifacts,
    auth,
    conversions,
    health,
    jobs,
    models,
    tracks,
    voices,
    webhooks,
)
from app.api.schemas import ConversionOptions, ConversionRequest, VoiceImportOptions
from app.api.throttle import FailureThrottle
from app.core import idempotency
from app.core.config import Settings, get_settings
from app.core.storage import LocalStorage, is_disk_full

_APP_DIR = Path(__file__).resolve().parent.parent
# an installed wheel carries the UI inside the package (setup.py copies frontend/ there);
# a checkout (editable install, tests) serves the top-level frontend/
FRONTEND_CANDIDATES = (_APP_DIR / "frontend", _APP_DIR.parent / "frontend")
log = logging.getLogger(__name__)

STORAGE_FULL = (
    "The server ran out of storage space, so the request was not carried out (nothing was "
    "kept). Free some space (or ask the administrator to) and try again."
)
DB_UNAVAILABLE = (
    "The database is busy or unreachable, so the request was not carried out "
    "(nothing was changed). Try again in a few seconds."
)


async def database_unavailable(request: Request, exc: Exception) -> JSONResponse:
    """A locked SQLite file (another process holds the write lock past the busy timeout) or a
    PostgreSQL server that is down or dropped the connection: 503 with Retry-After, not 500."""
    log.warning("database unavailable for %s %s: %s", request.method, request.url.path, exc)
    return JSONResponse(
        status_code=503, content={"detail": DB_UNAVAILABLE}, headers={"Retry-After": "5"}
    )


BAD_VALUE = (
    "The request holds a value the database cannot take (a NUL character in a name or id, a "
    "number out of range), so nothing was changed. Leave it out and try again."
)


async def bad_value(request: Request, exc: Exception) -> JSONResponse:
    """A value the database refused (PostgreSQL: NUL in text, a number out of range): the
    request's fault, so 400 in plain words rather than 500. Fields the schemas know are
    checked before this (422); this catches what reaches a query unchecked (a path id)."""
    log.warning("database refused a value in %s %s: %s", request.method, request.url.path, exc)
    return JSONResponse(status_code=400, content={"detail": BAD_VALUE})


async def storage_error(request: Request, exc: Exception) -> JSONResponse:
    """The storage volume is full (or a quota is): 507 in plain words. Routes clean up what
    they wrote before the error reaches here. Any other OS error is a real fault (500)."""
    if not is_disk_full(exc):
        raise exc
    log.error("storage full during %s %s: %s", request.method, request.url.path, exc)
    return JSONResponse(status_code=507, content={"detail": STORAGE_FULL})


async def idempotent_replay(request: Request, exc: Exception) -> JSONResponse:
    """A repeated request with its Idempotency-Key: the first answer, again."""
    assert isinstance(exc, idempotency.Replay)
    return JSONResponse(
        status_code=exc.status_code, content=exc.response, headers={"Idempotent-Replayed": "true"}
    )


async def idempotency_refused(request: Request, exc: Exception) -> JSONResponse:
    if isinstance(exc, idempotency.KeyBusy):
        return JSONResponse(
            status_code=409, content={"detail": str(exc)}, headers={"Retry-After": "2"}
        )
    return JSONResponse(status_code=422, content={"detail": str(exc)})


# request bodies documented by hand (routes that read their body themselves) whose schemas
# must be in the spec's components
DOCUMENTED_MODELS: tuple[type[BaseModel], ...] = (
    ConversionRequest,
    ConversionOptions,
    VoiceImportOptions,
)


# The error answers each route gives beyond FastAPI's own 422, written once (all of them carry
# {"detail": "<plain words>"}). Every route also answers 503 when the database is unavailable;
# authenticated ones 401; routes with an id in the path 404 (another user's id included); any
# request with credentials 429 while its client is throttled; changes 403 (CSRF, csrf.py).
ERROR_WORDS = {
    400: "The request is not usable (its message says why)",
    401: "Missing or invalid access token",
    403: "A change made with the browser's session cookie from another site's page (CSRF)",
    404: "No such resource (or another user's)",
    409: "Conflicts with the resource's state, or a request with this Idempotency-Key is "
    "still being processed",
    410: "The file is no longer in storage",
    413: "Too large (a file, the form fields or a JSON body)",
    415: "A file is not of the accepted kind",
    429: "Too many failed sign-ins or invalid tokens from this address: wait (Retry-After)",
    503: "The database is busy or unreachable: try again (Retry-After)",
    507: "The server ran out of storage space (nothing was kept)",
}
UPLOAD = (400, 409, 413, 415, 507)
ROUTE_ERRORS: dict[tuple[str, str], tuple[int, ...]] = {
    ("post", "/api/v1/voices/import"): UPLOAD,
    ("post", "/api/v1/voices/{voice_id}/tracks"): UPLOAD,
    ("post", "/api/v1/tracks"): UPLOAD,
    ("post", "/api/v1/conversions"): (*UPLOAD, 404),  # the voice or tracks named in the body
    ("post", "/api/v1/voices/{voice_id}/train"): (400, 409),
    ("post", "/api/v1/conversions/{conversion_id}/remix"): (400, 409),
    ("post", "/api/v1/jobs/{job_id}/retry"): (400, 409),
    ("post", "/api/v1/jobs/{job_id}/cancel"): (409,),
    ("delete", "/api/v1/voices/{voice_id}"): (409,),
    ("delete", "/api/v1/tracks/{track_id}"): (409,),
    ("delete", "/api/v1/conversions/{conversion_id}"): (409,),
    ("get", "/api/v1/tracks/{track_id}/audio"): (409, 410),
    ("get", "/api/v1/artifacts/{artifact_id}/download"): (410,),
    ("post", "/api/v1/models/{name}/import"): (400, 413, 507),
}
PUBLIC = {("get", "/api/v1/health"), ("post", "/api/v1/auth/login")}


def _document_errors(schema: dict[str, Any]) -> None:
    schemas = schema.setdefault("components", {}).setdefault("schemas", {})
    schemas.setdefault(
        "Error",
        {
            "title": "Error",
            "type": "object",
            "properties": {"detail": {"type": "string", "title": "Detail"}},
            "required": ["detail"],
        },
    )
    error = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    for path, ops in schema.get("paths", {}).items():
        for method, op in ops.items():
            # 400: a body that is not JSON (FastAPI's answer), or a value the database
            # refuses (bad_value), which any request may carry
            codes = set(ROUTE_ERRORS.get((method, path), ())) | {400, 429, 503}
            if method.upper() in UNSAFE_METHODS:
                codes.add(403)
            if (method, path) not in PUBLIC:
                codes.add(401)
            if "{" in path:
                codes.add(404)
            if (method, path) == ("post", "/api/v1/auth/login"):
                codes.add(401)
            responses = op.setdefault("responses", {})
            invalid = responses.get("422", {}).get("content", {}).get("application/json")
            if invalid is not None:
                # a 422 is FastAPI's list of field errors, or one of ours in plain words
                # (a webhook URL that is not http(s), an Idempotency-Key reused differently)
                invalid["schema"] = {
                    "anyOf": [invalid["schema"], {"$ref": "#/components/schemas/Error"}]
                }
            for code in sorted(codes):
                entry = responses.setdefault(str(code), {"description": ERROR_WORDS[code]})
                entry.setdefault("content", error)


def _openapi(app: FastAPI) -> Callable[[], dict[str, Any]]:
    def build() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = FastAPI.openapi(app)
            _, top = models_json_schema(
                [(m, "validation") for m in DOCUMENTED_MODELS],
                ref_template="#/components/schemas/{model}",
            )
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            for name, definition in top.get("$defs", {}).items():
                components.setdefault(name, definition)
            _document_errors(schema)
            app.openapi_schema = schema
        return app.openapi_schema

    return build


# the browser UI loads only its own files; the docs pages run Swagger's inline start-up script
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data: blob:; media-src 'self' blob:; connect-src 'self'; "
    "object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
)
DOCS_PATHS = ("/docs", "/redoc")


async def security_headers(request: Request, call_next: Callable[[Request], Any]) -> Response:
    """Headers every answer carries: no MIME sniffing (a stored file is never run as a page),
    no framing, no referrer to other sites, and a content policy for the UI."""
    response = await call_next(request)
    h = response.headers
    h.setdefault("X-Content-Type-Options", "nosniff")
    h.setdefault("X-Frame-Options", "DENY")
    h.setdefault("Referrer-Policy", "same-origin")
    if not request.url.path.startswith(DOCS_PATHS):
        h.setdefault("Content-Security-Policy", CSP)
    return response


class FrontendMissingError(RuntimeError):
    pass


def find_frontend(settings: Settings) -> Path:
    """The directory of the browser UI, or a loud error: a server that silently comes up
    without its UI (a wheel built without it) looks healthy and serves 404s to every user."""
    candidates = (settings.frontend_dir,) if settings.frontend_dir else FRONTEND_CANDIDATES
    for d in candidates:
        if d is not None and (d / "index.html").is_file():
            return d
    raise FrontendMissingError(
        "The browser UI is missing: no index.html in "
        + ", ".join(str(d) for d in candidates if d is not None)
        + ". Reinstall svc-studio from a wheel built with setup.py (it copies frontend/ into "
        "the package), set SVC_FRONTEND_DIR, or set SVC_SERVE_UI=false for an API-only server."
    )


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    # the docs' Swagger UI and ReDoc assets come from the fastapi-offline package, not a CDN
    app = FastAPIOffline(
        title="svc-studio",
        version="0.1.0",
        docs_url="/docs",
        redoc_url="/redoc",
        openapi_url="/api/v1/openapi.json",
        description="Singing voice conversion studio: voices, tracks, jobs, "
        "conversions. Authenticate with `Authorization: Bearer <token>`.",
    )
    app.state.settings = settings
    app.state.auth_throttle = FailureThrottle(
        settings.auth_failure_burst, settings.auth_failures_per_minute
    )
    app.middleware("http")(same_origin_writes)  # inner: its 403 gets the headers below
    app.middleware("http")(security_headers)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    app.state.storage = LocalStorage(settings.storage_dir)
    app.add_exception_handler(OperationalError, database_unavailable)
    app.add_exception_handler(DataError, bad_value)
    app.add_exception_handler(PoolTimeout, database_unavailable)  # every connection in use
    app.add_exception_handler(OSError, storage_error)
    app.add_exception_handler(idempotency.Replay, idempotent_replay)
    app.add_exception_handler(idempotency.KeyMismatch, idempotency_refused)
    app.add_exception_handler(idempotency.KeyBusy, idempotency_refused)

    api = APIRouter(prefix="/api/v1")
    for module in (health, auth, voices, tracks, jobs, conversions, artifacts, webhooks, models):
        api.include_router(module.router)
    app.include_router(api)
    app.openapi = _openapi(app)  # type: ignore[method-assign]
    if settings.serve_ui:
        app.mount("/", StaticFiles(directory=find_frontend(settings), html=True), name="frontend")
    return app


def app_factory() -> FastAPI:
    """Entry point for ``uvicorn --factory app.api.main:app_factory``."""
    return create_app()
