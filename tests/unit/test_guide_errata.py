"""The guide's code, reproduced as written, breaks where docs/errata.md says it does.

Each test runs a guide snippet (with its module-level Redis client made an in-process fakeredis,
its database an in-memory SQLite) and asserts the failure the erratum names. The kit's fix is
proven by the tests each erratum lists beside this one. No servers needed.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from datetime import datetime
from functools import wraps
from typing import Any

import fakeredis
import httpx
import pytest
from fastapi import APIRouter, FastAPI, HTTPException
from pydantic import BaseModel
from sqlalchemy import create_engine, select
from sqlalchemy.exc import InvalidRequestError
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine
from sqlalchemy.orm import Session

# redis-py deprecates SETEX, which the guide's snippets call; the calls still work.
pytestmark = pytest.mark.filterwarnings("ignore:Call to deprecated setex:DeprecationWarning")

# --- Caching & Performance › 2. Rate Limiting ------------------------------------------------


def test_guide_rate_limit_applied_as_a_decorator_runs_once_at_import_and_leaves_no_route() -> None:
    redis_client = fakeredis.FakeRedis()

    def rate_limit(key: str, limit: int, window: int) -> None:  # the guide's function
        current = redis_client.get(key)
        if current and int(current) >= limit:
            raise HTTPException(status_code=429)
        pipe = redis_client.pipeline()
        pipe.incr(key)
        pipe.expire(key, window)
        pipe.execute()

    router = APIRouter()
    # The guide's "User Management Flow" stacks it under the route decorator. The call runs
    # once, while the module is imported, and returns None; None is then applied to the
    # endpoint, so importing the router module fails. (mypy reports both lines, as it would in
    # the guide's module.)
    with pytest.raises(TypeError, match="'NoneType' object is not callable"):

        @router.post("/register")  # type: ignore[misc]
        @rate_limit(key="register", limit=5, window=3600)  # type: ignore[func-returns-value,untyped-decorator]
        async def register_user() -> dict[str, str]:
            return {}

    assert router.routes == []  # no endpoint was registered
    assert redis_client.get("register") == b"1"  # the only "request" ever counted: the import


# --- Caching & Performance › 1. Redis Caching -----------------------------------------------


Endpoint = Callable[..., Awaitable[Any]]


def guide_cache_response(redis_client: Any) -> Callable[..., Callable[[Endpoint], Endpoint]]:
    """The guide's `cache_response(ttl)`, bound to a Redis client given here."""

    def cache_response(ttl: int = 300) -> Callable[[Endpoint], Endpoint]:
        def decorator(func: Endpoint) -> Endpoint:
            @wraps(func)
            async def wrapper(*args: Any, **kwargs: Any) -> Any:
                cache_key = f"{func.__name__}:{str(args)}:{str(kwargs)}"  # noqa: RUF010
                cached_value = redis_client.get(cache_key)
                if cached_value:
                    return json.loads(cached_value)
                result = await func(*args, **kwargs)
                redis_client.setex(cache_key, ttl, json.dumps(result))
                return result

            return wrapper

        return decorator

    return cache_response


class UserResponse(BaseModel):
    id: int
    email: str
    created_at: datetime


async def test_guide_cache_response_cannot_store_a_pydantic_response() -> None:
    redis_client = fakeredis.FakeRedis()
    cache_response = guide_cache_response(redis_client)
    calls = 0

    @cache_response(ttl=300)
    async def read_user(user_id: int) -> UserResponse:
        nonlocal calls
        calls += 1
        return UserResponse(id=user_id, email="a@example.com", created_at=datetime(2024, 1, 1))

    # The endpoint's work is done, then json.dumps refuses the model: every call is a 500.
    for _ in range(2):
        with pytest.raises(TypeError, match="not JSON serializable"):
            await read_user(1)
    assert calls == 2
    assert redis_client.keys("*") == []


async def test_guide_cache_response_keyed_on_the_session_never_hits() -> None:
    redis_client = fakeredis.FakeRedis()
    cache_response = guide_cache_response(redis_client)
    engine = create_async_engine("sqlite+aiosqlite://")
    calls = 0

    @cache_response(ttl=300)
    async def list_items(db: AsyncSession, limit: int) -> list[int]:
        nonlocal calls
        calls += 1
        return list(range(limit))

    # Two requests with the same inputs: each has its own session, whose repr is in the key.
    for _ in range(2):
        async with AsyncSession(engine) as db:
            assert await list_items(db, 3) == [0, 1, 2]
    await engine.dispose()
    assert calls == 2  # the second request missed too
    assert len(redis_client.keys("list_items:*")) == 2  # and left one more entry behind


# --- Common Pitfalls and Solutions › 2. Caching Pitfalls › Cache Invalidation ---------------


async def test_guide_cache_invalidation_fix_deletes_a_key_its_cache_never_wrote() -> None:
    redis_client = fakeredis.FakeRedis()
    cache_response = guide_cache_response(redis_client)
    users = {5: {"id": 5, "name": "Ada"}}

    # The "correct way" passes a key_prefix that the guide's decorator does not take.
    with pytest.raises(TypeError, match="key_prefix"):
        cache_response(ttl=3600, key_prefix="user")

    # Without it, the decorator stores the user under its own key...
    @cache_response(ttl=3600)
    async def get_user(user_id: int) -> dict[str, Any]:
        return dict(users[user_id])

    async def update_user(user_id: int, data: dict[str, Any]) -> None:
        users[user_id].update(data)
        redis_client.delete(f"user:{user_id}")  # the guide's invalidation

    assert (await get_user(5))["name"] == "Ada"
    assert redis_client.keys("*") == [b"get_user:(5,):{}"]
    # ...and the invalidation deletes another one: readers get the old name for an hour.
    await update_user(5, {"name": "Grace"})
    assert (await get_user(5))["name"] == "Ada"


# --- Performance Considerations › 2. Caching Strategies › Multi-Level Caching ---------------


class GuideMultiLevelCache:
    """The guide's `MultiLevelCache`, with the Redis client passed in instead of `Redis()`."""

    def __init__(self, redis_client: Any) -> None:
        self.memory_cache: dict[str, Any] = {}
        self.redis_client = redis_client

    async def get(self, key: str) -> Any:
        if key in self.memory_cache:
            return self.memory_cache[key]
        value = await self.redis_client.get(key)
        if value:
            self.memory_cache[key] = value
            return value
        return None

    async def set(self, key: str, value: Any, ttl: int = 300) -> None:
        self.memory_cache[key] = value
        await self.redis_client.setex(key, ttl, value)


async def test_guide_multi_level_cache_awaits_a_sync_redis_client() -> None:
    # The guide builds it with `redis.Redis()`, whose calls return values, not awaitables.
    cache = GuideMultiLevelCache(fakeredis.FakeRedis())
    with pytest.raises(TypeError, match="can't be used in 'await' expression"):
        await cache.set("featured", "[1, 2]")
    with pytest.raises(TypeError, match="can't be used in 'await' expression"):
        await cache.get("a key only Redis could have")


async def test_guide_multi_level_cache_memory_tier_never_expires_nor_stops_growing() -> None:
    # Even with an async client, the memory tier is a plain dict.
    redis_client = fakeredis.FakeAsyncRedis()
    cache = GuideMultiLevelCache(redis_client)
    await cache.set("price:1", "10.00", ttl=60)
    await redis_client.delete("price:1")  # expired, or invalidated by a write
    assert await cache.get("price:1") == "10.00"  # served from memory, forever

    for i in range(2_000):
        await cache.set(f"profile:{i}", "{}")
    assert len(cache.memory_cache) == 2_001  # one entry per key ever set, none dropped
    await redis_client.aclose()


# --- Real-World Scenarios › 2. Order Processing Flow ----------------------------------------


def test_guide_order_flow_begin_on_the_requests_session_raises() -> None:
    engine = create_engine("sqlite://")
    with Session(engine) as db:
        # get_current_user ran a query on the same request-scoped session: it has autobegun.
        db.execute(select(1))
        with pytest.raises(InvalidRequestError, match="already begun"), db.begin():
            pass  # `with db.begin():` is the first line of the guide's create_order
    with Session(engine) as fresh, fresh.begin():  # only a session that has run nothing may
        fresh.execute(select(1))
    engine.dispose()


# --- Testing Examples › 2. Integration Testing › Testing Authentication Flow -----------------


async def test_guide_register_route_answers_200_where_its_login_flow_test_expects_201() -> None:
    app = FastAPI()
    router = APIRouter()

    class UserOut(BaseModel):
        email: str

    # The guide's route declaration ("User Management Flow"), mounted under the users router.
    @router.post("/register", response_model=UserOut)
    async def register_user() -> UserOut:
        return UserOut(email="test@example.com")

    app.include_router(router, prefix="/api/v1/users")
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        # Where the guide's test posts, and what it gets where the route really is.
        assert (await client.post("/api/v1/auth/register")).status_code == 404
        assert (await client.post("/api/v1/users/register")).status_code == 200  # not 201
