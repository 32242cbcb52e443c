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

COOKIE_NAME = "svc_token"


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


def _token_from(request: Request) -> str | None:
    auth = request.headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip() or None
    return request.cookies.get(COOKIE_NAME)


def get_optional_user(request: Request, settings: SettingsDep) -> User | None:
    """The request's user if it sent a valid token, looked up in a short session of its own
    whose connection is back in the pool before the endpoint runs: a long request (an upload
    being streamed, an event stream) never holds a connection for its authentication. The
    user comes back detached; an endpoint that changes it loads it in its own session."""
    token = _token_from(request)
    if not token:
        return None
    with session_scope(settings.database_url) as session:
        user = crud.user_for_token(session, token=token, pepper=settings.token_pepper)
        if user is not None:
            session.expunge(user)
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
