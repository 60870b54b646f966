"""PF004 wrong: keys that leave out an input, so answers collide (guide: "Cache Key
Collisions")."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession

from pitfalls.pf004_cache_key_collision import data
from reference_app.models import User


async def cached(redis: Redis, key: str, compute: Callable[[], Awaitable[Any]]) -> Any:
    if (hit := await redis.get(key)) is not None:
        return json.loads(hit)
    value = await compute()
    await redis.set(key, json.dumps(value), ex=300)
    return value


async def user_data(
    redis: Redis, prefix: str, session: AsyncSession, user_id: int, data_type: str
) -> Any:
    # The guide's fix adds a prefix, yet the key still lacks data_type: items and orders collide.
    key = f"{prefix}:user_data:{user_id}"
    return await cached(redis, key, lambda: data.user_data(session, user_id, data_type))


async def my_profile(redis: Redis, prefix: str, session: AsyncSession, user: User) -> Any:
    # Keyed by the route, as a response cache in front of GET /users/profile: the user comes
    # from the token, not the URL, so every user shares the first user's entry.
    key = f"{prefix}:GET /api/v1/users/profile"
    return await cached(redis, key, lambda: data.profile(session, user.id))
