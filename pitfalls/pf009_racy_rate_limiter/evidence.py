"""PF009 evidence: a burst of concurrent requests against each limiter, the TTL a refused request
leaves behind, and a client that keeps retrying for a few windows."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from patterns.rate_limit import RateLimiter
from pitfalls._evidence import Evidence
from pitfalls._runner import Backends
from pitfalls.pf009_racy_rate_limiter import right, wrong

BURST, BURST_LIMIT = 50, 10
TTL_WINDOW_S, TTL_LEFT_MS = 60, 5_000
RETRY_LIMIT, RETRY_WINDOW_S, RETRY_EVERY_S, RETRY_FOR_S = 3, 1, 0.25, 3.5

# (key, limit, window seconds) -> allowed?; `key` is the client, without any prefix.
Allow = Callable[[str, int, int], Awaitable[bool]]


@dataclass(frozen=True)
class Limiter:
    name: str
    allow: Allow
    redis_key: Callable[[str], str]  # where the counter of a client lives


def limiters(backends: Backends) -> list[Limiter]:
    r, p = backends.redis, backends.key("rl")
    kit = RateLimiter(r, prefix=p)

    async def get_then_incr(key: str, limit: int, window: int) -> bool:
        return await wrong.allow_get_then_incr(r, f"{p}:a:{key}", limit, window)

    async def incr_then_expire(key: str, limit: int, window: int) -> bool:
        return await wrong.allow_incr_then_expire(r, f"{p}:b:{key}", limit, window)

    async def atomic(key: str, limit: int, window: int) -> bool:
        return await right.allow(kit, key, limit, window)

    return [
        Limiter("wrong: GET then INCR", get_then_incr, lambda k: f"{p}:a:{k}"),
        Limiter("wrong: INCR then EXPIRE", incr_then_expire, lambda k: f"{p}:b:{k}"),
        Limiter("right: one Lua script", atomic, lambda k: f"{p}:fixed:{k}"),
    ]


async def burst(backends: Backends, limiter: Limiter) -> int:
    """How many of BURST concurrent requests got through a limit of BURST_LIMIT."""
    await asyncio.gather(*(backends.redis.ping() for _ in range(BURST)))  # open the connections
    results = await asyncio.gather(
        *(limiter.allow("burst", BURST_LIMIT, TTL_WINDOW_S) for _ in range(BURST))
    )
    return sum(results)


async def ttl_after_refusal(backends: Backends, limiter: Limiter) -> int:
    """Fill a 60 s window, pretend all but 5 s of it have passed, send one more (refused)
    request: the TTL it leaves, in ms (5 000 or less: the window still ends on time)."""
    for _ in range(BURST_LIMIT + 1):
        await limiter.allow("ttl", BURST_LIMIT, TTL_WINDOW_S)
    key = limiter.redis_key("ttl")
    await backends.redis.pexpire(key, TTL_LEFT_MS)
    await limiter.allow("ttl", BURST_LIMIT, TTL_WINDOW_S)
    return int(await backends.redis.pttl(key))


async def retrying_client(limiter: Limiter) -> tuple[int, int]:
    """(requests allowed, requests sent) for a client sending one every RETRY_EVERY_S for
    RETRY_FOR_S against RETRY_LIMIT per RETRY_WINDOW_S. Real time: shown by the runner only."""
    allowed = sent = 0
    start = time.perf_counter()
    while time.perf_counter() - start < RETRY_FOR_S:
        allowed += await limiter.allow("retry", RETRY_LIMIT, RETRY_WINDOW_S)
        sent += 1
        await asyncio.sleep(RETRY_EVERY_S)
    return allowed, sent


async def run(backends: Backends) -> Evidence:
    made = limiters(backends)
    bursts = [await burst(backends, lim) for lim in made]
    ttls = [await ttl_after_refusal(backends, lim) for lim in made]
    retries = await asyncio.gather(*(retrying_client(lim) for lim in made))
    windows = int(RETRY_FOR_S / RETRY_WINDOW_S) + 1
    rows: list[list[object]] = [
        [
            f"{BURST} concurrent requests, limit {BURST_LIMIT}: let through",
            *(f"{b}" + (f" ({b - BURST_LIMIT} over)" if b > BURST_LIMIT else "") for b in bursts),
        ],
        [
            f"TTL after a refused request ({TTL_WINDOW_S} s window, {TTL_LEFT_MS // 1000} s left)",
            *(
                f"{t / 1000:.1f} s" + (" (window restarted)" if t > TTL_LEFT_MS else "")
                for t in ttls
            ),
        ],
        [
            f"client retrying every {RETRY_EVERY_S * 1000:.0f} ms for {RETRY_FOR_S} s, limit "
            f"{RETRY_LIMIT}/{RETRY_WINDOW_S} s: let through",
            *(f"{a} of {s}" for a, s in retries),
        ],
    ]
    (b_race, _, b_right), (_, t_expire, t_right) = bursts, ttls
    shown = b_race > BURST_LIMIT and t_expire > TTL_LEFT_MS and b_right == BURST_LIMIT
    shown = shown and t_right <= TTL_LEFT_MS
    return Evidence(
        columns=["scenario", *(lim.name for lim in made)],
        rows=rows,
        shown=shown,
        verdict=(
            f"GET then INCR let {b_race} of {BURST} concurrent requests through a limit of "
            f"{BURST_LIMIT}; INCR then EXPIRE restarts the window on every refused request, so "
            f"the retrying client got {retries[1][0]} through in ~{windows} windows; the Lua "
            f"script let exactly {b_right} through and kept the window's end."
        ),
    )
