"""Shared dependencies and their `Annotated` aliases (guide: "Dependency Injection").

The guide decodes with python-jose and compares the `sub` string to an integer column; here the
access token is verified by `TokenService` (pinned algorithm, required claims, type `access`),
checked against the revocation list, and the user must still exist, be active, and not have
changed their password since the token was issued (the token's `ver` is not the user's
`credentials_version`: 401 `credentials_changed`). 401 means "who are you?"; 403 (from
`require_roles`) means "not you".

Who the user is comes from a snapshot cached in Redis for a short time
(`patterns.security.principals`), asked for in the same round trip as the revocation check, so
an authenticated read whose answer is cached touches no database. The services that change a
user drop that snapshot themselves after their commit (`reference_app/services/users.py`); a
change made behind the app's back (SQL by hand, a script) shows within the snapshot's TTL
(`KIT_AUTH_PRINCIPAL_TTL_S`). Endpoints that change the user's own row take
`CurrentUserRecord`, the ORM object, loaded and checked again.

Every dependency here is `async def`: FastAPI runs a plain `def` dependency on its thread pool,
a thread hop per request, and the token service's memo of verified tokens would then be
changed from several threads at once.
"""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import Depends
from fastapi.security import OAuth2PasswordBearer

from patterns.errors import AuthenticationError
from patterns.rbac import make_require_roles
from patterns.security import Claims, TokenType
from patterns.validation import INT32_MAX
from reference_app.core.db import SessionDep
from reference_app.core.state import AppState, CacheDep, StateDep
from reference_app.crud.user import users
from reference_app.models.user import STAFF_ROLES, Role, User
from reference_app.schemas.user import Principal

# auto_error=False: a missing token becomes our own 401 in the error envelope.
oauth2_scheme = OAuth2PasswordBearer(tokenUrl="/api/v1/auth/login", auto_error=False)

BearerToken = Annotated[str | None, Depends(oauth2_scheme)]


async def decode_access_token(state: StateDep, token: BearerToken) -> Claims:
    """The bearer token's verified claims (no Redis, no database; once per request)."""
    if not token:
        raise AuthenticationError("Not authenticated.")
    return state.tokens.decode(token, TokenType.ACCESS)


BearerClaims = Annotated[Claims, Depends(decode_access_token)]


async def get_access_claims(state: StateDep, claims: BearerClaims) -> Claims:
    """A valid, unrevoked access token's claims (for endpoints about the token, not the user)."""
    if await state.redis.checks.is_revoked(claims):
        raise AuthenticationError("The token has been revoked.", code="token_revoked")
    return claims


AccessClaims = Annotated[Claims, Depends(get_access_claims)]


# Canonical ASCII decimal only ("7", not "007", nor "٧" or "²", which `str.isdigit` accepts and
# `int` may not), and short (`int` refuses over 4300 digits): the subject is also a cache key,
# and the app writes it as str(user id).
_SUBJECT = re.compile(r"[1-9][0-9]{0,9}")


def user_id_from_subject(sub: str) -> int:
    if _SUBJECT.fullmatch(sub) is None or int(sub) > INT32_MAX:
        raise AuthenticationError("The token is not valid.", code="token_invalid")
    return int(sub)


def check_credentials_version(claims: Claims, current: int) -> None:
    """Refuse a token issued before the user's password last changed. Any other version than
    the current one, not only an older one: a version ahead of the database's (restored from
    a backup, say) was issued for credentials the database no longer knows."""
    if claims.version != current:
        raise AuthenticationError(
            "The password has changed since this token was issued; log in again.",
            code="credentials_changed",
        )


def _user_not_found() -> AuthenticationError:
    return AuthenticationError("The user no longer exists.", code="user_not_found")


def _user_inactive() -> AuthenticationError:
    return AuthenticationError("The user is inactive.", code="user_inactive")


async def get_current_user(session: SessionDep, state: StateDep, claims: BearerClaims) -> Principal:
    """The token's user: one Redis round trip (revoked? cached snapshot?), the database only
    when the snapshot is not cached. Inactive users are cached too: their next request is
    refused without a database read."""
    user_id = user_id_from_subject(claims.sub)
    principals = state.redis.principals
    revoked, principal = await principals.lookup(claims, str(user_id))
    if revoked:
        raise AuthenticationError("The token has been revoked.", code="token_revoked")
    if principal is None:
        user = await users.get(session, user_id)
        if user is None:
            raise _user_not_found()
        principal = Principal.model_validate(user)
        await principals.store(str(user_id), principal)
    check_principal(claims, principal)
    return principal


def check_principal(claims: Claims, principal: Principal) -> None:
    """Refuse a snapshot's user who is inactive or whose password changed since the token."""
    if not principal.is_active:
        raise _user_inactive()
    check_credentials_version(claims, principal.credentials_version)


def admits(claims: Claims, principal: Principal) -> bool:
    """Whether `get_current_user` accepts this token's user as the snapshot describes them:
    the check of a cached answer served before routing (`reference_app.main`)."""
    try:
        check_principal(claims, principal)
    except AuthenticationError:
        return False
    return True


def subject_of(claims: Claims) -> int | None:
    """The token's user id as `get_current_user` reads it, or None where it refuses it."""
    try:
        return user_id_from_subject(claims.sub)
    except AuthenticationError:
        return None


CurrentUser = Annotated[Principal, Depends(get_current_user)]


async def get_current_user_record(
    session: SessionDep, principal: CurrentUser, claims: BearerClaims
) -> User:
    """The current user's row, for endpoints that change it; existence, state and credentials
    are checked again against the database, not the snapshot."""
    user = await users.get(session, principal.id)
    if user is None:
        raise _user_not_found()
    if not user.is_active:
        raise _user_inactive()
    check_credentials_version(claims, user.credentials_version)
    return user


CurrentUserRecord = Annotated[User, Depends(get_current_user_record)]
require_roles = make_require_roles(get_current_user)
AdminUser = Annotated[Principal, Depends(require_roles(Role.ADMIN))]
StaffUser = Annotated[Principal, Depends(require_roles(*STAFF_ROLES))]

__all__ = [
    "AccessClaims",
    "AdminUser",
    "AppState",
    "CacheDep",
    "CurrentUser",
    "CurrentUserRecord",
    "SessionDep",
    "StaffUser",
    "StateDep",
    "get_current_user",
    "require_roles",
]
