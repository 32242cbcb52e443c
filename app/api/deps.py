"""Request dependencies: settings, DB session, storage, the current user."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from sqlalchemy.orm import Session

from app.core.config import Settings
from app.core.db import crud
from app.core.db.models import User
from app.core.db.session import session_scope
from app.core.storage import LocalStorage

# the browser UI's session: a random session id (see crud.open_browser_session), never a token
COOKIE_NAME = "svc_session"


def get_settings_dep(request: Request) -> Settings:
    return request.app.state.settings


SettingsDep = Annotated[Settings, Depends(get_settings_dep)]


def get_db(settings: SettingsDep) -> Iterator[Session]:
    with session_scope(settings.database_url) as session:  # commit, or roll back on error
        yield session


# scope="function": the session commits and closes when the endpoint returns, before the
# response is sent — a client that reads right after a 201 sees the row, and no write lock
# outlives the handler.
SessionDep = Annotated[Session, Depends(get_db, scope="function")]


def get_storage(request: Request) -> LocalStorage:
    return request.app.state.storage


StorageDep = Annotated[LocalStorage, Depends(get_storage)]


def bearer_token(request: Request) -> str | None:
    auth = request.headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip() or None
    return None


def client_address(request: Request) -> str:
    """Who a request comes from, for throttling (uvicorn's --proxy-headers and
    --forwarded-allow-ips make this the real client behind a trusted proxy)."""
    return request.client.host if request.client else "unknown"


def throttle_check(request: Request) -> None:
    """429 with Retry-After while this client has too many recent failed authentications."""
    wait = request.app.state.auth_throttle.retry_after(client_address(request))
    if wait is not None:
        raise HTTPException(
            status_code=status.HTTP_429_TOO_MANY_REQUESTS,
            detail="Too many failed sign-in attempts or invalid tokens from this address. "
            f"Try again in {wait} s.",
            headers={"Retry-After": str(wait)},
        )


def auth_failed(request: Request) -> None:
    request.app.state.auth_throttle.failed(client_address(request))


def get_optional_user(request: Request, settings: SettingsDep) -> User | None:
    """The request's user if it sent a valid bearer token or session cookie, looked up in a
    short session of its own whose connection is back in the pool before the endpoint runs: a
    long request (an upload being streamed, an event stream) never holds a connection for its
    authentication. The user comes back detached; an endpoint that changes it loads it in its
    own session. A bearer token wins over a cookie. Failures count against the client's
    throttle; a dead session cookie is cleared by the 401."""
    token = bearer_token(request)
    cookie = None if token else request.cookies.get(COOKIE_NAME)
    if not token and not cookie:
        return None
    throttle_check(request)
    with session_scope(settings.database_url) as session:
        if token:
            user = crud.user_for_token(session, token=token, pepper=settings.token_pepper)
        else:
            assert cookie is not None
            user = crud.user_for_browser_session(
                session, secret=cookie, pepper=settings.token_pepper
            )
        if user is not None:
            session.expunge(user)
    if user is None:
        auth_failed(request)
        if cookie:
            raise HTTPException(
                status_code=status.HTTP_401_UNAUTHORIZED,
                detail="Your session has ended (signed out, expired or its token was "
                "revoked). Sign in again.",
                headers={
                    "WWW-Authenticate": "Bearer",
                    "Set-Cookie": f"{COOKIE_NAME}=; Max-Age=0; Path=/; HttpOnly; SameSite=strict",
                },
            )
    return user


OptionalUser = Annotated[User | None, Depends(get_optional_user)]


def get_current_user(user: OptionalUser) -> User:
    if user is None:
        raise HTTPException(
            status_code=status.HTTP_401_UNAUTHORIZED,
            detail="Missing or invalid access token.",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return user


CurrentUser = Annotated[User, Depends(get_current_user)]


def not_found(what: str) -> HTTPException:
    return HTTPException(status_code=404, detail=f"{what} not found.")
