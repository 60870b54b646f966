"""Rate limiting on the real Redis (guide: "Rate Limiting"): exact under concurrency, with the
headers clients need, and a tested policy for when Redis is gone."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
from fastapi import Depends, FastAPI, Request
from httpx import ASGITransport, AsyncClient
from redis.asyncio import Redis

from patterns.errors import install_error_handlers
from patterns.rate_limit import Algorithm, Rate, RateLimit, RateLimiter, route_key


def _limited_app(redis: Redis, algorithm: Algorithm, *, fail_open: bool = True) -> FastAPI:
    app = FastAPI()
    install_error_handlers(app)
    limit = RateLimit(
        "probe",
        rate=lambda _r: Rate(5, 60),
        redis=lambda _r: redis,
        algorithm=algorithm,
        fail_open=lambda _r: fail_open,
    )

    @app.get("/limited", dependencies=[Depends(limit)])
    async def limited() -> dict[str, bool]:
        return {"ok": True}

    return app


@pytest.mark.parametrize("algorithm", list(Algorithm))
async def test_concurrent_requests_over_the_limit_let_exactly_the_limit_through(
    redis_client: Redis, algorithm: Algorithm
) -> None:
    app = _limited_app(redis_client, algorithm)
    async with AsyncClient(transport=ASGITransport(app=app), base_url="http://t") as c:
        responses = await asyncio.gather(*(c.get("/limited") for _ in range(25)))
    statuses = sorted(r.status_code for r in responses)
    assert statuses.count(200) == 5
    assert statuses.count(429) == 20


@pytest.mark.parametrize("algorithm", list(Algorithm))
async def test_limiter_is_exact_with_many_concurrent_callers(
    redis_client: Redis, algorithm: Algorithm
) -> None:
    limiter = RateLimiter(redis_client, algorithm=algorithm)
    decisions = await asyncio.gather(*(limiter.hit("k", Rate(5, 60)) for _ in range(60)))
    assert sum(d.allowed for d in decisions) == 5


async def test_429_carries_retry_after_and_ratelimit_headers(redis_client: Redis) -> None:
    app = _limited_app(redis_client, Algorithm.FIXED_WINDOW)
    async with AsyncClient(transport=ASGITransport(app=app), base_url="http://t") as c:
        first = await c.get("/limited")
        assert first.headers["X-RateLimit-Limit"] == "5"
        assert first.headers["X-RateLimit-Remaining"] == "4"
        for _ in range(4):
            await c.get("/limited")
        over = await c.get("/limited")
    assert over.status_code == 429
    assert over.json()["error"]["code"] == "rate_limited"
    assert 1 <= int(over.headers["Retry-After"]) <= 60
    assert over.headers["X-RateLimit-Remaining"] == "0"


async def test_fixed_window_sets_its_expiry_once_and_never_extends_it(redis_client: Redis) -> None:
    limiter = RateLimiter(redis_client, algorithm=Algorithm.FIXED_WINDOW)
    await limiter.hit("w", Rate(100, 60))
    key = "rl:fixed:w"
    first_ttl = await redis_client.pttl(key)
    assert 0 < first_ttl <= 60_000
    await redis_client.pexpire(key, 30_000)  # pretend half the window has passed
    for _ in range(10):
        await limiter.hit("w", Rate(100, 60))
    # The guide's INCR + EXPIRE on every request would have pushed this back to 60 s.
    assert await redis_client.pttl(key) <= 30_000


async def test_sliding_window_forgets_requests_older_than_the_window(redis_client: Redis) -> None:
    limiter = RateLimiter(redis_client, algorithm=Algorithm.SLIDING_WINDOW)
    for _ in range(5):
        assert (await limiter.hit("s", Rate(5, 60))).allowed
    assert not (await limiter.hit("s", Rate(5, 60))).allowed
    # Age every recorded request beyond the window (scores are server-clock milliseconds).
    key = "rl:sliding:s"
    entries: list[Any] = await redis_client.zrange(key, 0, -1, withscores=True)
    await redis_client.zadd(key, {member: score - 61_000 for member, score in entries})
    assert (await limiter.hit("s", Rate(5, 60))).allowed


async def test_redis_down_fails_open_by_default(
    dead_redis: Redis, caplog: pytest.LogCaptureFixture
) -> None:
    app = _limited_app(dead_redis, Algorithm.FIXED_WINDOW, fail_open=True)
    with caplog.at_level(logging.WARNING, logger="patterns.rate_limit"):
        async with AsyncClient(transport=ASGITransport(app=app), base_url="http://t") as c:
            statuses = [(await c.get("/limited")).status_code for _ in range(5)]
    assert statuses == [200] * 5
    # One line for the outage, not one per request: login is the route clients hammer.
    assert caplog.text.count("failing open") == 1


async def test_redis_down_fails_closed_when_configured(dead_redis: Redis) -> None:
    app = _limited_app(dead_redis, Algorithm.FIXED_WINDOW, fail_open=False)
    async with AsyncClient(transport=ASGITransport(app=app), base_url="http://t") as c:
        r = await c.get("/limited")
    assert r.status_code == 503
    assert r.json()["error"]["code"] == "service_unavailable"
    assert r.headers["Retry-After"] == "1"


async def test_register_is_limited_to_the_guides_five_per_hour(client: AsyncClient) -> None:
    statuses = []
    for i in range(6):
        r = await client.post(
            "/api/v1/auth/register", json={"email": f"r{i}@example.com", "password": "password-1"}
        )
        statuses.append(r.status_code)
    assert statuses == [201] * 5 + [429]
    assert 3500 < int(r.headers["Retry-After"]) <= 3600


async def test_login_is_limited_from_settings(client: AsyncClient) -> None:
    statuses = set()
    for _ in range(11):
        r = await client.post(
            "/api/v1/auth/login", data={"username": "x@example.com", "password": "wrong-pass"}
        )
        statuses.add(r.status_code)
    assert statuses == {401, 429}
    assert r.status_code == 429


def test_rates_parse_from_settings_strings() -> None:
    assert Rate.parse("5/3600") == Rate(5, 3600)
    assert Rate.parse("5/hour") == Rate(5, 3600)
    assert Rate.parse(" 10 / minute ") == Rate(10, 60)
    for bad in ("", "5", "0/60", "five/hour", "5/fortnight"):
        with pytest.raises(ValueError, match="rate"):
            Rate.parse(bad)


def test_route_key_uses_the_template() -> None:
    class _Route:
        path = "/items/{item_id}"

    scope = {"type": "http", "route": _Route(), "path": "/items/7", "headers": []}
    assert route_key(Request(scope)) == "/items/{item_id}"
