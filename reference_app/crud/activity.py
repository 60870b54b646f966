"""Activities and preferences, what a user's profile shows (guide: "User Management Flow")."""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from patterns.crud import CRUDBase
from reference_app.models.profile import Activity, UserPreferences


class CRUDActivity(CRUDBase[Activity, BaseModel, BaseModel]):
    def new(self, user_id: int, kind: str, detail: str | None = None) -> Activity:
        """An activity row, not yet added anywhere (the detail cut to its column)."""
        return Activity(user_id=user_id, kind=kind, detail=detail[:200] if detail else None)

    def record(
        self, session: AsyncSession, user_id: int, kind: str, detail: str | None = None
    ) -> None:
        """Add an activity row to the current unit of work (flushed with the rest of it)."""
        session.add(self.new(user_id, kind, detail))

    async def recent(self, session: AsyncSession, user_id: int, limit: int) -> Sequence[Activity]:
        result = await session.scalars(
            select(Activity)
            .where(Activity.user_id == user_id)
            .order_by(Activity.created_at.desc(), Activity.id.desc())
            .limit(limit)
        )
        return result.all()


class CRUDPreferences(CRUDBase[UserPreferences, BaseModel, BaseModel]):
    async def get_for_user(self, session: AsyncSession, user_id: int) -> UserPreferences | None:
        return await session.scalar(
            select(UserPreferences).where(UserPreferences.user_id == user_id)
        )


activities = CRUDActivity(Activity)
preferences = CRUDPreferences(UserPreferences)
