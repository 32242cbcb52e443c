from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter, HTTPException, Request, Response

from app.api.deps import (
    COOKIE_NAME,
    CurrentUser,
    SessionDep,
    SettingsDep,
    auth_failed,
    throttle_check,
)
from app.api.schemas import LoginRequest, UserPublic
from app.core.db import crud

router = APIRouter(tags=["auth"])


@router.get("/me", response_model=UserPublic)
def me(user: CurrentUser) -> UserPublic:
    return UserPublic.model_validate(user)


@router.post("/auth/login", response_model=UserPublic)
def login(
    body: LoginRequest,
    request: Request,
    response: Response,
    session: SessionDep,
    settings: SettingsDep,
) -> UserPublic:
    """Sign a browser in with an API token: an HttpOnly session cookie holding a new session's
    id (not the token). The session ends at logout, at its expiry (SVC_SESSION_DAYS) or when
    the token is revoked. Failed attempts are throttled per client (429)."""
    throttle_check(request)
    opened = crud.open_browser_session(
        session,
        token=body.token,
        pepper=settings.token_pepper,
        lifetime=timedelta(days=settings.session_days),
    )
    if opened is None:
        auth_failed(request)
        raise HTTPException(401, "That token is not valid.")
    secret, user = opened
    response.set_cookie(
        COOKIE_NAME,
        secret,
        httponly=True,
        samesite="strict",
        secure=settings.public_url.startswith("https"),
        max_age=int(settings.session_days * 86400),
        path="/",
    )
    return UserPublic.model_validate(user)


@router.post("/auth/logout", status_code=204)
def logout(
    request: Request, response: Response, session: SessionDep, settings: SettingsDep
) -> Response:
    """End this browser's session: its row is deleted, so the cookie is worthless even where
    it was copied, and the cookie is cleared."""
    secret = request.cookies.get(COOKIE_NAME)
    if secret:
        crud.close_browser_session(session, secret=secret, pepper=settings.token_pepper)
    response.delete_cookie(COOKIE_NAME, path="/", httponly=True, samesite="strict")
    response.status_code = 204
    return response
