"""The authenticated user's cached snapshot, and dropping it when the user changes
(guide: "Dependency Injection"; the pattern is `patterns.security.principals`).

A change to a `users` row made through the ORM in an authenticated request drops that user's
snapshot when the request commits: a mapper event notes the ids a session updated or deleted,
and the current-user dependency registers, on the request's session, an after-commit hook that
forgets them (a tombstone, see `PrincipalCache.forget`). Every path of the app that changes a
user is such a request (`PATCH /users/me`, `PATCH /admin/users/{id}`), so deactivation, role
changes and a new password (the snapshot carries `credentials_version`, which tokens issued
before it fall short of) take effect on the user's next request in every worker. Changes made
elsewhere (SQL by hand, a bulk `UPDATE` statement, a script) show within the snapshot's TTL
(`KIT_AUTH_PRINCIPAL_TTL_S`); a user deleted that way meanwhile gets 401 on writes
(`reference_app.core.errors`).
"""

from __future__ import annotations

from typing import Any

from fastapi import Request
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import object_session

from patterns.db import on_commit
from patterns.security.principals import PrincipalCache
from reference_app.models.user import User
from reference_app.schemas.user import Principal

_CHANGED = "kit_users_changed"

Principals = PrincipalCache[Principal]


@event.listens_for(User, "after_update")
@event.listens_for(User, "after_delete")
def _note_changed_user(_mapper: Any, _connection: Any, target: User) -> None:
    session = object_session(target)
    if session is not None:
        session.info.setdefault(_CHANGED, set()).add(str(target.id))


def get_principals(request: Request) -> Principals:
    principals: Principals = request.app.state.principals
    return principals


async def load_principal(
    session: AsyncSession, principals: Principals, user_id: int
) -> Principal | None:
    """Read the user from the database and cache the snapshot (inactive users too: their next
    request is refused without a database read)."""
    user = await session.get(User, user_id)
    if user is None:
        return None
    principal = Principal.model_validate(user)
    await principals.store(str(user_id), principal)
    return principal


def forget_changes_on_commit(session: AsyncSession, principals: Principals) -> None:
    """After this session commits, drop the snapshots of the users it changed (none: no-op)."""

    async def _forget() -> None:
        changed = session.info.pop(_CHANGED, None)
        if changed:
            await principals.forget(changed)

    on_commit(session, _forget)
