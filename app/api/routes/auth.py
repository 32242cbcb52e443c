from __future__ import annotations

from fastapi import APIRouter, HTTPException, Response

from app.api.deps import COOKIE_NAME, CurrentUser, SessionDep, SettingsDep
from app.api.schemas import LoginRequest, UserPublic
from app.core.db import crud

router = APIRouter(tags=["auth"])


@router.get("/me", response_model=UserPublic)
def me(user: CurrentUser) -> UserPublic:
    return UserPublic.model_validate(user)


@router.post("/auth/login", response_model=UserPublic)
def login(
    body: LoginRequest, response: Response, session: SessionDep, settings: SettingsDep
) -> UserPublic:
    """Exchange an API token for an HttpOnly session cookie (for the browser UI)."""
    user = crud.user_for_token(session, token=body.token, pepper=settings.token_pepper)
    if user is None:
        raise HTTPException(401, "That token is not valid.")
    response.set_cookie(
        COOKIE_NAME,
        body.token,
        httponly=True,
        samesite="strict",
        secure=settings.public_url.startswith("https"),
        max_age=30 * 86400,
    )
    return UserPublic.model_validate(user)


@router.post("/auth/logout", status_code=204)
def logout(response: Response) -> Response:
    response.delete_cookie(COOKIE_NAME)
    response.status_code = 204
    return response
