"""Catalog benchmarks asked for by the catalog issue (guide: "Bulk Operations", "Pagination",
"Redis Caching"): bulk insert against one-by-one, offset against keyset at a deep page, and a
cache hit against the database read it replaces.

Each pair shares a benchmark group, so `nox -s bench` prints the two side by side. Data lives in
the harness's rolled-back transaction (or the per-worker Redis database) and is gone afterwards.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pytest_benchmark.fixture import BenchmarkFixture
from redis.asyncio import Redis
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from patterns.cache import Cache, CacheSpec
from patterns.pagination import CursorParams, Keyset, Page, PageParams, paginate, paginate_keyset
from reference_app.crud.item import items
from reference_app.models.item import Item
from reference_app.models.user import User
from reference_app.schemas.item import ItemCreate, ItemResponse
from tests.benchmarks.conftest import Run, add_owner, add_stocked_items

ROWS = 1000
CATALOG = 20_000
PAGE = 100
DEEP_SKIP = CATALOG - 2 * PAGE  # the second-to-last page
ITEM_PAGE = CacheSpec("bench.items.page", ttl=60)


def _payloads(round_no: int) -> list[ItemCreate]:
    return [
        ItemCreate(title=f"Bulk {round_no}-{i}", category="books", price=i % 100 + 1)
        for i in range(ROWS)
    ]


@pytest.fixture
def owner_id(run: Run, db_session: AsyncSession) -> int:
    owner: User = run(add_owner(db_session))
    return owner.id


@pytest.fixture
def catalog(run: Run, db_session: AsyncSession, owner_id: int) -> list[int]:
    ids: list[int] = run(add_stocked_items(db_session, owner_id, CATALOG))
    return ids


@pytest.mark.benchmark(group="catalog: insert 1000 items")
@pytest.mark.parametrize("how", ["bulk_create", "one_by_one"])
def test_bench_insert_1000_items(
    benchmark: BenchmarkFixture,
    run: Run,
    db_session: AsyncSession,
    owner_id: int,
    unique: Iterator[int],
    how: str,
) -> None:
    async def insert(rows: list[ItemCreate]) -> int:
        if how == "bulk_create":
            return len(await items.bulk_create(db_session, rows, owner_id=owner_id))
        for row in rows:  # one INSERT and one round trip per row, as `create` in a loop does
            await items.create(db_session, row, owner_id=owner_id)
        return len(rows)

    inserted = benchmark.pedantic(  # type: ignore[no-untyped-call]
        lambda rows: run(insert(rows)),
        setup=lambda: ((_payloads(next(unique)),), {}),
        rounds=5,
        warmup_rounds=1,
    )
    assert inserted == ROWS
    db_session.expunge_all()


@pytest.mark.benchmark(group="catalog: deep page of 100 in 20k items")
@pytest.mark.parametrize("how", ["offset", "keyset"])
def test_bench_deep_page(
    benchmark: BenchmarkFixture, run: Run, db_session: AsyncSession, catalog: list[int], how: str
) -> None:
    keyset = Keyset(Item.id)
    # The keyset cursor of the row just before the offset window: both read the same 100 rows.
    cursor = keyset.encode([catalog[DEEP_SKIP - 1]])

    async def read_page() -> list[int]:
        stmt = select(Item).order_by(Item.id)
        if how == "offset":
            page = await paginate(
                db_session, stmt, PageParams(skip=DEEP_SKIP, limit=PAGE), schema=ItemResponse
            )
        else:
            page = await paginate_keyset(  # type: ignore[assignment]
                db_session, stmt, keyset, CursorParams(cursor, PAGE), schema=ItemResponse
            )
        db_session.expunge_all()  # a request starts with an empty identity map
        return [item.id for item in page.items]

    ids = benchmark(lambda: run(read_page()))
    assert ids == catalog[DEEP_SKIP : DEEP_SKIP + PAGE]


@pytest.mark.benchmark(group="catalog: first page of 100, cache hit vs database")
@pytest.mark.parametrize("source", ["database", "cache_hit"])
def test_bench_item_page_from_cache_or_database(
    benchmark: BenchmarkFixture,
    run: Run,
    db_session: AsyncSession,
    redis_client: Redis,
    catalog: list[int],
    source: str,
) -> None:
    cache = Cache(redis_client, prefix="bench")
    model = Page[ItemResponse]

    async def from_database() -> Page[ItemResponse]:
        stmt = select(Item).order_by(Item.id)
        page = await paginate(db_session, stmt, PageParams(limit=PAGE), schema=ItemResponse)
        db_session.expunge_all()
        return page

    async def read() -> Page[ItemResponse]:
        if source == "database":
            return await from_database()
        return await cache.get_or_set(ITEM_PAGE, from_database, parts={"page": 1}, model=model)

    run(read())  # the cache is filled before timing: every timed cache read is a hit
    page = benchmark(lambda: run(read()))
    assert [item.id for item in page.items] == catalog[:PAGE]
