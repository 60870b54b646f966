"""Shared dependencies and their `Annotated` aliases (guide: "Dependency Injection").

The guide decodes with python-jose and compares the `sub` string to an integer column; here the
access token is verified by `TokenService` (pinned algorithm, required claims, type `access`),
checked against the revocation list, and the user must still exist and be active. 401 means
"who are you?"; 403 (from `require_roles`) means "not you".
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import OAuth2PasswordBearer

from patterns.errors import AuthenticationError
from patterns.rbac import make_require_roles
from patterns.security import Claims, TokenType
from patterns.security.revocation import RevocationList
from patterns.validation import INT32_MAX
from reference_app.core.db import SessionDep
from reference_app.core.redis import get_redis
from reference_app.core.security import get_tokens
from reference_app.models.user import Role, User

# auto_error=False: a missing token becomes our own 401 in the error envelope.
oauth2_scheme = OAuth2PasswordBearer(tokenUrl="/api/v1/auth/login", auto_error=False)


async def get_access_claims(
    request: Request, token: Annotated[str | None, Depends(oauth2_scheme)]
) -> Claims:
    if not token:
        raise AuthenticationError("Not authenticated.")
    claims = get_tokens(request).decode(token, TokenType.ACCESS)
    settings = request.app.state.settings
    revocations = RevocationList(get_redis(request), fail_open=settings.auth_revocation_fail_open)
    if await revocations.is_revoked(claims.jti):
        raise AuthenticationError("The token has been revoked.", code="token_revoked")
    return claims


AccessClaims = Annotated[Claims, Depends(get_access_claims)]


def user_id_from_subject(sub: str) -> int:
    if not sub.isdigit() or not 1 <= int(sub) <= INT32_MAX:
        raise AuthenticationError("The token is not valid.", code="token_invalid")
    return int(sub)


async def get_current_user(session: SessionDep, claims: AccessClaims) -> User:
    user = await session.get(User, user_id_from_subject(claims.sub))
    if user is None:
        raise AuthenticationError("The user no longer exists.", code="user_not_found")
    if not user.is_active:
        raise AuthenticationError("The user is inactive.", code="user_inactive")
    return user


CurrentUser = Annotated[User, Depends(get_current_user)]
require_roles = make_require_roles(get_current_user)
AdminUser = Annotated[User, Depends(require_roles(Role.ADMIN))]
StaffUser = Annotated[User, Depends(require_roles(Role.ADMIN, Role.MANAGER))]

__all__ = [
    "AccessClaims",
    "AdminUser",
    "CurrentUser",
    "SessionDep",
    "StaffUser",
    "get_current_user",
    "require_roles",
]
