"""patterns.crud and patterns.pagination on the users table (guide: "Bulk Operations",
"Pagination"): bulk_create against create() in a loop, and offset against keyset at a deep page
of 20k committed rows.

Run with `pytest tests/benchmarks/test_crud_bench.py --benchmark-only`. The guide's benchmark
reuses the same emails every round and so violates the unique index from the second round on;
here every round inserts emails it has never used.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import pytest
import pytest_asyncio
from pydantic import BaseModel, ConfigDict
from pytest_benchmark.fixture import BenchmarkFixture
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from patterns.pagination import CursorParams, Keyset, PageParams, paginate, paginate_keyset
from reference_app.models import User
from tests.benchmarks.conftest import UserIn, users

ROWS = 1000
SEEDED = 20_000
# `run` (tests/benchmarks/conftest.py) drives a coroutine on the harness's session loop.
Run = Callable[[Awaitable[Any]], Any]
PAGE = 50
DEEP_SKIP = SEEDED - 2 * PAGE


class UserOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    email: str


@pytest.mark.benchmark(group="crud: insert 1000 users")
@pytest.mark.parametrize("how", ["bulk_create", "create_in_a_loop"])
def test_bench_insert_1000_users(
    benchmark: BenchmarkFixture,
    run: Run,
    db_session: AsyncSession,
    unique: Iterator[int],
    how: str,
) -> None:
    async def insert(rows: list[UserIn]) -> int:
        if how == "bulk_create":
            return len(await users.bulk_create(db_session, rows))
        for row in rows:
            await users.create(db_session, row)
        return len(rows)

    def new_rows() -> tuple[tuple[list[UserIn]], dict[str, Any]]:
        round_no = next(unique)
        return ([UserIn(email=f"r{round_no}-{i}@example.com") for i in range(ROWS)],), {}

    inserted = benchmark.pedantic(  # type: ignore[no-untyped-call]
        lambda rows: run(insert(rows)), setup=new_rows, rounds=10, warmup_rounds=2
    )
    assert inserted == ROWS
    db_session.expunge_all()


@pytest_asyncio.fixture
async def seeded_users(
    committed_db: async_sessionmaker[AsyncSession],
) -> AsyncIterator[list[int]]:
    """20k committed users (the planner sees real statistics); `committed_db` empties the
    tables afterwards."""
    async with committed_db() as session:
        created = await users.bulk_create(
            session, [UserIn(email=f"seed{i:05}@example.com") for i in range(SEEDED)]
        )
        ids = [u.id for u in created]
        await session.commit()
    yield ids


@pytest.mark.benchmark(group="crud: deep page of 50 in 20k users")
@pytest.mark.parametrize("how", ["offset_with_count", "offset_page_only", "keyset"])
def test_bench_deep_page(
    benchmark: BenchmarkFixture,
    run: Run,
    committed_db: async_sessionmaker[AsyncSession],
    seeded_users: list[int],
    how: str,
) -> None:
    keyset = Keyset(User.id)
    cursor = keyset.encode([seeded_users[DEEP_SKIP - 1]])  # the same window for every variant

    async def read_page() -> list[int]:
        async with committed_db() as session:
            stmt = select(User).order_by(User.id)
            if how == "offset_with_count":
                page = await paginate(
                    session, stmt, PageParams(skip=DEEP_SKIP, limit=PAGE), schema=UserOut
                )
                return [u.id for u in page.items]
            if how == "offset_page_only":
                return [u.id for u in await users.get_multi(session, skip=DEEP_SKIP, limit=PAGE)]
            keyset_page = await paginate_keyset(
                session, stmt, keyset, CursorParams(cursor, PAGE), schema=UserOut
            )
            return [u.id for u in keyset_page.items]

    ids = benchmark(lambda: run(read_page()))
    assert ids == seeded_users[DEEP_SKIP : DEEP_SKIP + PAGE]
