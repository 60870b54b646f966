"""Exercise 10 — an atomic rate limit in Redis (guide: "Rate Limiting").

`INCR` counts and answers in one step, whatever the concurrency; `EXPIRE … NX` starts the
window's clock with the first request only (later ones do not push it back). MULTI/EXEC sends
both together, so a key never lives without its expiry.
"""

from __future__ import annotations

from redis.asyncio import Redis


async def allow(redis: Redis, key: str, limit: int, window_s: int) -> bool:
    async with redis.pipeline(transaction=True) as pipe:
        pipe.incr(key)
        pipe.expire(key, window_s, nx=True)
        count, _ = await pipe.execute()
    return int(count) <= limit
