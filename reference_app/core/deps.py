"""Shared dependencies and their `Annotated` aliases (guide: "Dependency Injection").

The guide decodes with python-jose and compares the `sub` string to an integer column; here the
access token is verified by `TokenService` (pinned algorithm, required claims, type `access`),
checked against the revocation list, and the user must still exist, be active, and not have
changed their password since the token was issued (the token's `ver` is older than the user's
`credentials_version`: 401 `credentials_changed`). 401 means "who are you?"; 403 (from
`require_roles`) means "not you".

Who the user is comes from a snapshot cached in Redis for a short time
(`reference_app.core.principals`), asked for in the same round trip as the revocation check, so
an authenticated read whose answer is cached touches no database. Endpoints that change the
user's own row take `CurrentUserRecord`, the ORM object, loaded and checked again.
"""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import OAuth2PasswordBearer

from patterns.errors import AuthenticationError
from patterns.rbac import make_require_roles
from patterns.security import Claims, TokenType
from patterns.security.revocation import RevocationList
from patterns.validation import INT32_MAX
from reference_app.core.db import SessionDep
from reference_app.core.principals import (
    forget_changes_on_commit,
    get_principals,
    load_principal,
)
from reference_app.core.security import get_tokens
from reference_app.models.user import Role, User
from reference_app.schemas.user import Principal

# auto_error=False: a missing token becomes our own 401 in the error envelope.
oauth2_scheme = OAuth2PasswordBearer(tokenUrl="/api/v1/auth/login", auto_error=False)

BearerToken = Annotated[str | None, Depends(oauth2_scheme)]


def decode_access_token(request: Request, token: BearerToken) -> Claims:
    """The bearer token's verified claims (no Redis, no database; once per request)."""
    if not token:
        raise AuthenticationError("Not authenticated.")
    return get_tokens(request).decode(token, TokenType.ACCESS)


BearerClaims = Annotated[Claims, Depends(decode_access_token)]


async def get_access_claims(request: Request, claims: BearerClaims) -> Claims:
    """A valid, unrevoked access token's claims (for endpoints about the token, not the user)."""
    revocations: RevocationList = request.app.state.revocations  # one, so its warnings are too
    if await revocations.is_revoked(claims):
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


async def get_current_user(
    request: Request, session: SessionDep, claims: BearerClaims
) -> Principal:
    """The token's user: one Redis round trip (revoked? cached snapshot?), the database only
    when the snapshot is not cached."""
    user_id = user_id_from_subject(claims.sub)
    principals = get_principals(request)
    revoked, principal = await principals.lookup(claims, str(user_id))
    if revoked:
        raise AuthenticationError("The token has been revoked.", code="token_revoked")
    if principal is None:
        principal = await load_principal(session, principals, user_id)
        if principal is None:
            raise _user_not_found()
    if not principal.is_active:
        raise _user_inactive()
    check_credentials_version(claims, principal.credentials_version)
    forget_changes_on_commit(session, principals)
    return principal


CurrentUser = Annotated[Principal, Depends(get_current_user)]


async def get_current_user_record(
    session: SessionDep, principal: CurrentUser, claims: BearerClaims
) -> User:
    """The current user's row, for endpoints that change it; existence, state and credentials
    are checked again against the database, not the snapshot."""
    user = await session.get(User, principal.id)
    if user is None:
        raise _user_not_found()
    if not user.is_active:
        raise _user_inactive()
    check_credentials_version(claims, user.credentials_version)
    return user


CurrentUserRecord = Annotated[User, Depends(get_current_user_record)]
require_roles = make_require_roles(get_current_user)
AdminUser = Annotated[Principal, Depends(require_roles(Role.ADMIN))]
StaffUser = Annotated[Principal, Depends(require_roles(Role.ADMIN, Role.MANAGER))]

__all__ = [
    "AccessClaims",
    "AdminUser",
    "CurrentUser",
    "CurrentUserRecord",
    "SessionDep",
    "StaffUser",
    "get_current_user",
    "require_roles",
]
