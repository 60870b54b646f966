"""Registration, login, refresh and logout (guide: "JWT Authentication", "User Management Flow").

Registration is the guide's flow done right: the rate limit is a real dependency, the duplicate
email is a 409 in the envelope, the welcome email goes out as a background task after the commit,
and the registrations counter moves only when the user is committed.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, BackgroundTasks, Depends, Request, status

from patterns.db import on_commit
from patterns.errors import AuthenticationError, PermissionDeniedError, error_responses
from patterns.security import TokenPair, TokenType
from patterns.security.revocation import RevocationList, Rotation
from reference_app.core.cache import CacheDep, user_tag
from reference_app.core.deps import (
    AccessClaims,
    SessionDep,
    check_credentials_version,
    user_id_from_subject,
)
from reference_app.core.mail import send_welcome_email
from reference_app.core.metrics import REGISTRATIONS
from reference_app.core.rate_limits import login_account_limit, login_limit, register_limit
from reference_app.core.redis import get_redis
from reference_app.core.security import get_passwords, get_tokens
from reference_app.crud import activity
from reference_app.crud import user as user_crud
from reference_app.models.user import User
from reference_app.schemas.token import LoginForm, LogoutRequest, RefreshRequest, TokenResponse
from reference_app.schemas.user import (
    PASSWORD_MAX_LENGTH,
    UserRegister,
    UserResponse,
    normalize_email,
)

router = APIRouter(prefix="/auth", tags=["auth"])


def _token_response(pair: TokenPair, request: Request) -> TokenResponse:
    ttl = get_tokens(request).ttl[TokenType.ACCESS]
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
    user_in: UserRegister, session: SessionDep, request: Request, background: BackgroundTasks
) -> User:
    """Create an account (rate limited per client); a welcome email follows."""
    user = await user_crud.create(session, user_in, get_passwords(request))
    activity.record(session, user.id, "registered")
    on_commit(session, REGISTRATIONS.inc)
    background.add_task(send_welcome_email, request.app.state.mailer, user.email, user.full_name)
    return user


@router.post(
    "/login",
    response_model=TokenResponse,
    dependencies=[login_limit],
    responses=error_responses(401, 403, 422, 429),
)
async def login(
    form: Annotated[LoginForm, Depends()],
    session: SessionDep,
    request: Request,
    cache: CacheDep,
) -> TokenResponse:
    """OAuth2 password flow: `username` is the email. Returns an access and a refresh token.
    Failed attempts are limited per address and per account (429 with `Retry-After`)."""
    # Per account, from any address: a failure inside the block counts (docs: Decisions).
    async with login_account_limit.attempt(request, normalize_email(form.username)):
        # The form is not a schema: bound it here. A NUL cannot be in a stored email (PostgreSQL
        # text refuses it) and would reach the query as a driver error, i.e. a 500.
        if (
            len(form.password) > PASSWORD_MAX_LENGTH
            or len(form.username) > 320
            or "\x00" in form.username
        ):
            raise AuthenticationError("Incorrect email or password.", code="invalid_credentials")
        user = await user_crud.authenticate(
            session, form.username, form.password, get_passwords(request)
        )
        if user is None:
            raise AuthenticationError("Incorrect email or password.", code="invalid_credentials")
    if not user.is_active:
        raise PermissionDeniedError("The user is inactive.", code="user_inactive")
    activity.record(session, user.id, "login")
    cache.invalidate_on_commit(session, tags=[user_tag(user.id)])
    pair = get_tokens(request).create_pair(user.id, version=user.credentials_version)
    return _token_response(pair, request)


@router.post("/refresh", response_model=TokenResponse, responses=error_responses(401, 422))
async def refresh(body: RefreshRequest, session: SessionDep, request: Request) -> TokenResponse:
    """Trade a refresh token for a new pair of the same login's family. The old refresh token
    is used up (rotation): of racing uses exactly one succeeds. A use after the grace window
    (`KIT_AUTH_REFRESH_REUSE_GRACE_S`) is a replay: the token was copied, so every token of the
    family is revoked and the user logs in again. A refresh token issued before the user's
    password changed is refused, so a stolen one dies with the old password."""
    tokens = get_tokens(request)
    claims = tokens.decode(body.refresh_token, TokenType.REFRESH)
    user = await session.get(User, user_id_from_subject(claims.sub))
    if user is None or not user.is_active:
        raise AuthenticationError("The user is inactive or no longer exists.", code="user_inactive")
    check_credentials_version(claims, user.credentials_version)
    revocations = RevocationList(get_redis(request))  # fails closed: a 503 if Redis is down
    if claims.family is not None and await revocations.is_family_revoked(claims.family):
        raise AuthenticationError("The token has been revoked.", code="token_revoked")
    rotation = await revocations.rotate(
        claims,
        grace_s=request.app.state.settings.auth_refresh_reuse_grace_s,
        family_ttl_s=_refresh_lifetime_s(request),
    )
    if rotation is Rotation.REPLAYED:
        raise AuthenticationError(
            "This refresh token was already used; every session of this login has been ended.",
            code="refresh_token_reused",
        )
    if rotation is Rotation.RACED:
        raise AuthenticationError("The token has been revoked.", code="token_revoked")
    pair = tokens.create_pair(user.id, version=user.credentials_version, family=claims.family)
    return _token_response(pair, request)


def _refresh_lifetime_s(request: Request) -> int:
    return int(get_tokens(request).ttl[TokenType.REFRESH].total_seconds())


@router.post("/logout", status_code=status.HTTP_204_NO_CONTENT, responses=error_responses(401, 422))
async def logout(claims: AccessClaims, request: Request, body: LogoutRequest | None = None) -> None:
    """End this login: revoke this access token, the refresh token if given, and every token of
    their family (the login and its rotations) until they would expire.
    A refresh token that is not valid or not the caller's refuses the whole request: nothing
    is revoked, so a 401 never leaves the caller logged out."""
    revoked = [claims]
    if body and body.refresh_token:
        refresh_claims = get_tokens(request).decode(body.refresh_token, TokenType.REFRESH)
        if refresh_claims.sub != claims.sub:
            raise AuthenticationError("The refresh token belongs to another user.")
        revoked.append(refresh_claims)
    # The family too: the login's refresh tokens die even if the client did not send them.
    await RevocationList(get_redis(request)).revoke(
        *revoked, family_ttl_s=_refresh_lifetime_s(request)
    )
