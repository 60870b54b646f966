"""Reading a user's profile (guide: "User Management Flow"): three small indexed queries."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from reference_app.models.item import Item
from reference_app.models.profile import Activity, UserPreferences
from reference_app.schemas.profile import (
    ActivityResponse,
    PreferencesResponse,
    ProfileResponse,
)
from reference_app.schemas.user import UserResponse

RECENT_ACTIVITY = 5


async def load_profile(session: AsyncSession, user: UserResponse) -> ProfileResponse:
    activities = await session.scalars(
        select(Activity)
        .where(Activity.user_id == user.id)
        .order_by(Activity.created_at.desc(), Activity.id.desc())
        .limit(RECENT_ACTIVITY)
    )
    prefs = await session.scalar(select(UserPreferences).where(UserPreferences.user_id == user.id))
    return ProfileResponse(
        user=UserResponse.model_validate(user),
        recent_activity=[ActivityResponse.model_validate(a) for a in activities],
        preferences=PreferencesResponse.model_validate(prefs) if prefs else PreferencesResponse(),
    )


async def featured_items(session: AsyncSession, limit: int) -> list[Item]:
    stmt = select(Item).where(Item.is_featured.is_(True)).order_by(Item.id).limit(limit)
    return list(await session.scalars(stmt))
