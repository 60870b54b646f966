"""patterns.cache (guide: "Redis Caching", "Multi-Level Caching"): a page of users read from
PostgreSQL, from a Redis hit, and from a memory-tier hit, each returned as the same validated
`Page` model.

Run with `pytest tests/benchmarks/test_cache_bench.py --benchmark-only`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from pydantic import BaseModel, ConfigDict
from pytest_benchmark.fixture import BenchmarkFixture
from redis.asyncio import Redis
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from patterns.cache import Cache, CacheSettings, CacheSpec
from patterns.pagination import Page, PageParams, paginate
from reference_app.models import User
from tests.benchmarks.conftest import UserIn, users

# `run` (tests/benchmarks/conftest.py) drives a coroutine on the harness's session loop.
Run = Callable[[Awaitable[Any]], Any]
PAGE = 50
SPECS = {
    "redis_hit": CacheSpec("bench.users.page", ttl=60),
    "memory_hit": CacheSpec("bench.users.page.mem", ttl=60, memory_ttl=30),
}


class UserOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    email: str
    full_name: str | None
    role: str


@pytest.fixture
def user_ids(run: Run, db_session: AsyncSession) -> list[int]:
    rows = [UserIn(email=f"cached{i:04}@example.com") for i in range(1000)]
    return [u.id for u in run(users.bulk_create(db_session, rows))]


@pytest.mark.benchmark(group="cache: first page of 50 users")
@pytest.mark.parametrize("source", ["database", "redis_hit", "memory_hit"])
def test_bench_user_page_from_cache_or_database(
    benchmark: BenchmarkFixture,
    run: Run,
    db_session: AsyncSession,
    redis_client: Redis,
    user_ids: list[int],
    source: str,
) -> None:
    cache = Cache(redis_client, CacheSettings(prefix="bench"))

    async def from_database() -> Page[UserOut]:
        stmt = select(User).order_by(User.id)
        page = await paginate(db_session, stmt, PageParams(limit=PAGE), schema=UserOut)
        db_session.expunge_all()  # a request starts with an empty identity map
        return page

    async def read() -> Page[UserOut]:
        if source == "database":
            return await from_database()
        return await cache.get_or_set(
            SPECS[source], from_database, parts={"page": 1}, model=Page[UserOut]
        )

    run(read())  # filled before timing: every timed cache read is a hit
    page = benchmark(lambda: run(read()))
    assert [u.id for u in page.items] == user_ids[:PAGE]
