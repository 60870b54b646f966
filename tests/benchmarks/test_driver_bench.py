"""The API's async PostgreSQL driver, asyncpg, against psycopg 3's async mode (SQLAlchemy's
`postgresql+psycopg`), side by side in one run (docs/performance.md, "Figures").

The same work through each: a primary-key lookup of one user in a fresh `AsyncSession`, and a
page of 100 users turned into objects, on 2,000 committed rows, each engine with the API's pool
settings. The benchmarks of a group run one after the other in the same run, so their ratio is
the figure to read; the driver is all that differs.

Run with `python3 noxfile.py -s bench -- -k driver`.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
import pytest_asyncio
from pytest_benchmark.fixture import BenchmarkFixture
from sqlalchemy import insert, select
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from patterns.db import make_async_engine
from reference_app.models import User

Run = Callable[[Awaitable[Any]], Any]
ROWS = 2000
DRIVERS = {"asyncpg": "postgresql+asyncpg", "psycopg": "postgresql+psycopg"}


@pytest_asyncio.fixture(loop_scope="session")
async def committed_users(committed_db: async_sessionmaker[AsyncSession]) -> list[int]:
    """`ROWS` committed users; `committed_db` empties the tables afterwards."""
    async with committed_db() as session:
        rows = [{"email": f"driver{i}@example.com", "hashed_password": "x"} for i in range(ROWS)]
        ids = list(await session.scalars(insert(User).returning(User.id), rows))
        await session.commit()
    return ids


@pytest_asyncio.fixture(loop_scope="session", params=list(DRIVERS))
async def sessions(
    request: pytest.FixtureRequest, database_url: str, committed_users: list[int]
) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    url = make_url(database_url).set(drivername=DRIVERS[request.param])
    engine = make_async_engine(url, pool_size=10, max_overflow=10)
    try:
        yield async_sessionmaker(engine, expire_on_commit=False)
    finally:
        await engine.dispose()


@pytest.mark.benchmark(group="driver: one user by primary key")
def test_bench_driver_primary_key_lookup(
    benchmark: BenchmarkFixture,
    run: Run,
    sessions: async_sessionmaker[AsyncSession],
    committed_users: list[int],
) -> None:
    ids = itertools.cycle(committed_users)

    async def lookup() -> str | None:
        async with sessions() as session:
            user = await session.get(User, next(ids))
            return user.email if user else None

    assert benchmark(lambda: run(lookup())) is not None


@pytest.mark.benchmark(group="driver: a page of 100 users")
def test_bench_driver_page_of_100(
    benchmark: BenchmarkFixture, run: Run, sessions: async_sessionmaker[AsyncSession]
) -> None:
    async def page() -> int:
        async with sessions() as session:
            users = await session.scalars(select(User).order_by(User.id).limit(100))
            return len(users.all())

    assert benchmark(lambda: run(page())) == 100
