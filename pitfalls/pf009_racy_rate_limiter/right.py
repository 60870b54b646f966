"""PF009 right: the kit's `RateLimiter`: one Lua script that INCRs and sets the expiry only when
the key is new, atomically in Redis (guide: "Rate Limiting")."""

from __future__ import annotations

from patterns.rate_limit import Rate, RateLimiter


async def allow(limiter: RateLimiter, key: str, limit: int, window_s: int) -> bool:
    decision = await limiter.hit(key, Rate(limit, window_s))
    return decision.allowed
