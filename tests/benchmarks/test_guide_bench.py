"""The guide's two benchmark examples, done right (guide: "Benchmark Testing").

* Bulk-creating 100 users: the guide builds the same 100 emails in every round, so the second
  round hits the unique index (`tests/integration/test_performance_errata.py` proves it). Here
  every round inserts 100 new emails, through the kit's `CRUDBase.bulk_create` (one
  `INSERT … RETURNING` per batch), inside the harness's rolled-back transaction.
* Cache set/get: on a real Redis (the harness's per-worker database), through the kit's cache
  (`patterns.cache.Cache.set`, then a read that hits), not an in-process stand-in.

Run with `python3 noxfile.py -s bench`; plain `pytest` skips benchmarks (`--benchmark-skip` in
addopts).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from pytest_benchmark.fixture import BenchmarkFixture
from redis.asyncio import Redis
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from patterns.cache import Cache, CacheSettings, CacheSpec
from patterns.crud import CRUDBase
from reference_app.models.user import User
from tests.benchmarks.conftest import SHARED_HASH, Run

ROUNDS = 30
USERS_PER_ROUND = 100
PROFILE = CacheSpec("bench.profile", ttl=60)


def _users(round_no: int) -> list[dict[str, str]]:
    return [
        {
            "email": f"bench-r{round_no}-u{i}@example.com",
            "hashed_password": SHARED_HASH,
            "full_name": f"Bench User {i}",
        }
        for i in range(USERS_PER_ROUND)
    ]


@pytest.mark.benchmark(group="guide: bulk create 100 users")
def test_bench_bulk_create_100_users_with_new_emails_every_round(
    benchmark: BenchmarkFixture, run: Run, db_session: AsyncSession, unique: Iterator[int]
) -> None:
    crud: CRUDBase[User, Any, Any] = CRUDBase(User)
    # Each round's rows are built in the untimed setup, so only the INSERT is measured.
    result = benchmark.pedantic(  # type: ignore[no-untyped-call]
        lambda rows: run(crud.bulk_create(db_session, rows)),
        setup=lambda: ((_users(next(unique)),), {}),
        rounds=ROUNDS,
        warmup_rounds=1,
    )
    assert len(result) == USERS_PER_ROUND
    assert all(user.id is not None for user in result)
    stored = run(db_session.scalar(select(func.count()).select_from(User)))
    assert stored == USERS_PER_ROUND * (ROUNDS + 1)  # every round's users, none rejected


@pytest.mark.benchmark(group="guide: cache set/get")
def test_bench_cache_set_then_get_on_real_redis(
    benchmark: BenchmarkFixture, run: Run, redis_client: Redis
) -> None:
    cache = Cache(redis_client, CacheSettings(prefix="bench"))
    value = {"id": 42, "email": "test@example.com", "full_name": "Guide Test User"}

    async def set_then_get() -> object:
        await cache.set(PROFILE, value, parts={"user": 42})

        async def unreachable() -> object:
            raise AssertionError("a value just stored must be served from Redis")

        return await cache.get_or_set(PROFILE, unreachable, parts={"user": 42})

    assert benchmark(lambda: run(set_then_get())) == value
