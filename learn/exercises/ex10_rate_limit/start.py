"""Exercise 10 — an atomic rate limit in Redis (guide: "Rate Limiting").

`allow(redis, key, limit, window_s)` answers whether one more request under `key` fits in the
current window (at most `limit` per `window_s` seconds). Every API process calls it against the
same Redis. Today it reads the count, decides, then writes: requests arriving together all read
the same count and all pass, so a burst goes straight through the limit. Make the count and the
decision one atomic step in Redis, and let the window expire on its own.
"""

from __future__ import annotations

from redis.asyncio import Redis


async def allow(redis: Redis, key: str, limit: int, window_s: int) -> bool:
    count = int(await redis.get(key) or 0)
    if count >= limit:
        return False
    await redis.set(key, count + 1, ex=window_s)
    return True
