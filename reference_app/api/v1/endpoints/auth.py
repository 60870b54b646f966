"""Registration, login, refresh and logout (guide: "JWT Authentication", "User Management Flow").

Each route parses its input and calls its flow in `reference_app/services/auth.py`.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, BackgroundTasks, Depends, Request, status

from patterns.errors import AuthenticationError, error_responses
from patterns.security import TokenPair, TokenType
from reference_app.core.db import SessionDep
from reference_app.core.deps import AccessClaims, StateDep
from reference_app.core.rate_limits import login_account_limit, login_limit, register_limit
from reference_app.core.state import AppState
from reference_app.models.user import User
from reference_app.schemas.token import LoginForm, LogoutRequest, RefreshRequest, TokenResponse
from reference_app.schemas.user import (
    PASSWORD_MAX_LENGTH,
    UserRegister,
    UserResponse,
    normalize_email,
)
from reference_app.services import auth

router = APIRouter(prefix="/auth", tags=["auth"])


def _token_response(pair: TokenPair, state: AppState) -> TokenResponse:
    ttl = state.tokens.ttl[TokenType.ACCESS]
    return TokenResponse(
        access_token=pair.access_token,
        refresh_token=pair.refresh_token,
        expires_in=int(ttl.total_seconds()),
    )


@router.post(
    "/register",
    response_model=UserResponse,
    status_code=status.HTTP_201_CREATED,
    dependencies=[register_limit],
    responses=error_responses(409, 422, 429),
)
async def register(
    user_in: UserRegister, session: SessionDep, state: StateDep, background: BackgroundTasks
) -> User:
    """Create an account (rate limited per client); a welcome email follows."""
    return await auth.register(session, state, user_in, after_response=background)


@router.post(
    "/login",
    response_model=TokenResponse,
    dependencies=[login_limit],
    responses=error_responses(401, 403, 422, 429),
)
async def login(
    form: Annotated[LoginForm, Depends()],
    session: SessionDep,
    state: StateDep,
    request: Request,
) -> TokenResponse:
    """OAuth2 password flow: `username` is the email. Returns an access and a refresh token.
    Failed attempts are limited per address and per account (429 with `Retry-After`)."""
    # Per account, from any address: a refusal inside the block counts (docs: Decisions).
    async with login_account_limit.attempt(request, normalize_email(form.username)):
        # The form is not a schema: bound it here. A NUL cannot be in a stored email (PostgreSQL
        # text refuses it) and would reach the query as a driver error, i.e. a 500.
        if (
            len(form.password) > PASSWORD_MAX_LENGTH
            or len(form.username) > 320
            or "\x00" in form.username
        ):
            raise AuthenticationError("Incorrect email or password.", code="invalid_credentials")
        pair = await auth.login(session, state, form.username, form.password)
    return _token_response(pair, state)


@router.post("/refresh", response_model=TokenResponse, responses=error_responses(401, 422))
async def refresh(body: RefreshRequest, session: SessionDep, state: StateDep) -> TokenResponse:
    """Trade a refresh token for a new pair of the same login's family. The old refresh token
    is used up (rotation): of racing uses exactly one succeeds. A use after the grace window
    (`KIT_AUTH_REFRESH_REUSE_GRACE_S`) is a replay: the token was copied, so every token of the
    family is revoked and the user logs in again. A refresh token issued before the user's
    password changed is refused, so a stolen one dies with the old password."""
    pair = await auth.refresh(session, state, body.refresh_token)
    return _token_response(pair, state)


@router.post("/logout", status_code=status.HTTP_204_NO_CONTENT, responses=error_responses(401, 422))
async def logout(claims: AccessClaims, state: StateDep, body: LogoutRequest | None = None) -> None:
    """End this login: revoke this access token, the refresh token if given, and every token of
    their family (the login and its rotations) until they would expire.
    A refresh token that is not valid or not the caller's refuses the whole request: nothing
    is revoked, so a 401 never leaves the caller logged out."""
    await auth.logout(state, claims, body.refresh_token if body else None)
