"""PF004 right: a key is a hash of every input that changes the answer, and per-user data cannot
be cached without its user (guide: "Cache Key Collisions")."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from patterns.cache import Cache, CacheSpec
from pitfalls.pf004_cache_key_collision import data
from reference_app.models import User

USER_DATA = CacheSpec("user_data", ttl=300)
PROFILE = CacheSpec("users.profile", ttl=300, per_principal=True)  # no principal: ValueError


async def user_data(cache: Cache, session: AsyncSession, user_id: int, data_type: str) -> Any:
    parts = {"user_id": user_id, "data_type": data_type}
    return await cache.get_or_set(
        USER_DATA, lambda: data.user_data(session, user_id, data_type), parts=parts
    )


async def my_profile(cache: Cache, session: AsyncSession, user: User) -> Any:
    return await cache.get_or_set(
        PROFILE, lambda: data.profile(session, user.id), principal=user.id
    )
