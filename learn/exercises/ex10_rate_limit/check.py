"""Exercise 10's check: bursts and sequences against a real Redis."""

import asyncio
from types import ModuleType

import pytest
from redis.asyncio import Redis


@pytest.mark.integration
async def test_a_burst_gets_exactly_the_limit(learner: ModuleType, redis_url: str) -> None:
    # A connection per request, as separate API processes would have.
    redis = Redis.from_url(redis_url, max_connections=100)
    try:
        await redis.flushdb()
        answers = await asyncio.gather(
            *(learner.allow(redis, "rl:burst", 10, 60) for _ in range(50))
        )
    finally:
        await redis.flushdb()
        await redis.aclose()
    allowed = sum(bool(a) for a in answers)
    assert allowed == 10, (
        f"50 requests arriving together with a limit of 10: {allowed} were allowed. Reading the "
        "count and writing it back are two steps other requests slip between; let Redis count "
        "(INCR) and decide on the value it returns"
    )


@pytest.mark.integration
async def test_the_window_expires(learner: ModuleType, redis_client: Redis) -> None:
    answers = [await learner.allow(redis_client, "rl:seq", 3, 30) for _ in range(5)]
    assert answers == [True, True, True, False, False], (
        f"5 requests in a row with a limit of 3 got {answers}"
    )
    ttl = await redis_client.ttl("rl:seq")
    assert 0 < ttl <= 30, (
        f"the counter's time to live is {ttl} s; it must expire within the 30 s window "
        "(-1 means never: the limit would last forever)"
    )
