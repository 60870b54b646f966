"""Exercise 7 — a role check: 401 for who-are-you, 403 for not-allowed (guide: "Role-Based
Access Control").

Two different failures, two statuses: 401 says "authenticate (again)" and carries
`WWW-Authenticate`, so a client refreshes its token; 403 says "you are known and it is not
enough", and retrying with the same credentials will not help.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends

from learn.models import Account
from learn.support import optional_account
from patterns.errors import AuthenticationError, PermissionDeniedError


def require_role(role: str) -> Callable[..., Awaitable[Account]]:
    async def dependency(
        account: Annotated[Account | None, Depends(optional_account)],
    ) -> Account:
        if account is None:
            raise AuthenticationError()
        if account.role != role:
            raise PermissionDeniedError(f"This needs the {role} role.")
        return account

    return dependency
