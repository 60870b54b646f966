"""Role-based access control as a dependency factory (guide: "Role-Based Access Control").

`require_roles(Role.ADMIN)` gives a dependency that returns the current user when they hold one of
the roles, 403 when they do not; authentication failures stay 401 (raised by the current-user
dependency it wraps). Both leave in the error envelope.
"""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable
from typing import Any, Protocol, TypeVar

from fastapi import Depends

from patterns.errors import PermissionDeniedError


class HasRoles(Protocol):
    @property
    def roles(self) -> frozenset[Any]: ...


U = TypeVar("U", bound=HasRoles)


def make_require_roles(
    current_user: Callable[..., Awaitable[U]],
) -> Callable[..., Callable[..., Awaitable[U]]]:
    """Bind `require_roles` to the app's current-user dependency."""

    def require_roles(*allowed: enum.Enum) -> Callable[..., Awaitable[U]]:
        if not allowed:
            raise ValueError("require_roles needs at least one role")
        names = ", ".join(str(r.value) for r in allowed)

        async def role_checker(user: U = Depends(current_user)) -> U:
            if user.roles.isdisjoint(allowed):
                raise PermissionDeniedError(f"This requires one of the roles: {names}.")
            return user

        return role_checker

    return require_roles
