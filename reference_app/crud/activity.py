"""Activities and preferences, what a user's profile shows (guide: "User Management Flow")."""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import BaseModel
from sqlalchemy import func, select
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

    async def recent_for_users(
        self, session: AsyncSession, user_ids: Sequence[int], limit: int
    ) -> dict[int, list[Activity]]:
        """Each user's `limit` most recent activities, as `recent` orders them, in one
        statement: the rows are numbered per user and the first `limit` of each kept. It reads
        every activity of those users (`recent`'s index scan stops at `limit`): for a batch job
        such as the cache warm-up, in batches of users, not for a request."""
        newest_first = (Activity.created_at.desc(), Activity.id.desc())
        rank = func.row_number().over(partition_by=Activity.user_id, order_by=newest_first)
        ranked = (
            select(Activity.id, rank.label("rank")).where(Activity.user_id.in_(user_ids)).subquery()
        )
        result = await session.scalars(
            select(Activity)
            .join(ranked, Activity.id == ranked.c.id)
            .where(ranked.c.rank <= limit)
            .order_by(Activity.user_id, *newest_first)
        )
        by_user: dict[int, list[Activity]] = {user_id: [] for user_id in user_ids}
        for activity in result:
            by_user[activity.user_id].append(activity)
        return by_user


class CRUDPreferences(CRUDBase[UserPreferences, BaseModel, BaseModel]):
    async def get_for_user(self, session: AsyncSession, user_id: int) -> UserPreferences | None:
        return await session.scalar(
            select(UserPreferences).where(UserPreferences.user_id == user_id)
        )

    async def get_for_users(
        self, session: AsyncSession, user_ids: Sequence[int]
    ) -> dict[int, UserPreferences]:
        """The preferences of those of `user_ids` that have any, in one statement."""
        result = await session.scalars(
            select(UserPreferences).where(UserPreferences.user_id.in_(user_ids))
        )
        return {prefs.user_id: prefs for prefs in result}


activities = CRUDActivity(Activity)
preferences = CRUDPreferences(UserPreferences)
