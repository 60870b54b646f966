"""User data access (guide: "CRUD Operations", "User Management Flow")."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from patterns.crud import CRUDBase
from patterns.db import conflict_insert
from reference_app.models.user import Role, User
from reference_app.schemas.user import normalize_email


class CRUDUser(CRUDBase[User, BaseModel, BaseModel]):
    async def get_by_email(self, session: AsyncSession, email: str) -> User | None:
        """The user with this email, however it is spaced or cased (as registration stores it)."""
        return await session.scalar(select(User).where(User.email == normalize_email(email)))

    async def insert_missing(
        self, session: AsyncSession, rows: Sequence[dict[str, Any]]
    ) -> list[int]:
        """Insert the users whose email is not taken yet; the ids of those inserted. Safe with
        several processes at once (`INSERT … ON CONFLICT DO NOTHING`)."""
        stmt = (
            conflict_insert(session, User)
            .values(list(rows))
            .on_conflict_do_nothing(index_elements=[User.email])
            .returning(User.id)
        )
        return list(await session.scalars(stmt))

    async def lock_active_admin_ids(self, session: AsyncSession) -> set[int]:
        """The active admins' ids, their rows locked until the transaction ends: two admins
        demoting each other wait for one another here, and the second sees what the first left
        (PostgreSQL re-reads locked rows)."""
        ids = await session.scalars(
            select(User.id)
            .where(User.role == Role.ADMIN.value, User.is_active.is_(True))
            .order_by(User.id)
            .with_for_update()
        )
        return set(ids)

    async def recently_joined_active(self, session: AsyncSession, limit: int) -> Sequence[User]:
        """The newest active users (whose profiles the cache warm-up fills)."""
        result = await session.scalars(
            select(User).where(User.is_active.is_(True)).order_by(User.id.desc()).limit(limit)
        )
        return result.all()


users = CRUDUser(User)
