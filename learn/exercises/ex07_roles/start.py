"""Exercise 7 — a role check: 401 for who-are-you, 403 for not-allowed (guide: "Role-Based
Access Control").

`require_role("admin")` guards `GET /admin/report`. `optional_account` (given) is the account a
valid access token names, or None when there is no token or it is not valid. Today every refusal
is a 403, so a client whose token expired is told it lacks permission and never logs in again.
Answer 401 (the kit's `AuthenticationError`, which also sets `WWW-Authenticate: Bearer`) when
nobody is authenticated, and 403 (`PermissionDeniedError`) when the account lacks the role.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends

from learn.models import Account
from learn.support import optional_account
from patterns.errors import PermissionDeniedError


def require_role(role: str) -> Callable[..., Awaitable[Account]]:
    async def dependency(
        account: Annotated[Account | None, Depends(optional_account)],
    ) -> Account:
        if account is None or account.role != role:
            raise PermissionDeniedError()
        return account

    return dependency
