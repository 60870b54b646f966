"""PF009 wrong: two limiters built from separate Redis commands (guide: "Rate Limiting")."""

from __future__ import annotations

from redis.asyncio import Redis


async def allow_get_then_incr(redis: Redis, key: str, limit: int, window_s: int) -> bool:
    """The guide's limiter."""
    current = await redis.get(key)
    if current is not None and int(current) >= limit:
        return False
    # Every request that read the count before anyone incremented it gets this far.
    async with redis.pipeline() as pipe:
        pipe.incr(key)
        pipe.expire(key, window_s)
        await pipe.execute()
    return True


async def allow_incr_then_expire(redis: Redis, key: str, limit: int, window_s: int) -> bool:
    count = await redis.incr(key)
    # Refused requests restart the window too, so a client that retries faster than the window
    # is never let back in; and a crash between the two commands leaves a key with no TTL.
    await redis.expire(key, window_s)
    return count <= limit
