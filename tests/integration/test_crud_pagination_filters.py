"""paginate(), paginate_keyset() and FilterSet on real PostgreSQL, checked against a brute-force
filter in Python over the same rows (a throwaway table created in the test's transaction)."""

from __future__ import annotations

import random
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Annotated, Any

import pytest
import pytest_asyncio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import MetaData, insert, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import DeclarativeBase, Session

from patterns.db.queries import QueryCounter
from patterns.filtering import FilterSet, eq, gte, icontains, lte
from patterns.pagination import (
    CursorParams,
    Keyset,
    PageParams,
    SortKey,
    paginate,
    paginate_keyset,
    paginate_rows,
)
from tests.scratch_table import CatalogueColumns

QueryAssert = Callable[[int], AbstractContextManager[QueryCounter]]


class ScratchBase(DeclarativeBase):
    metadata = MetaData()  # not the app's: this table exists only inside one test's transaction


class Gadget(CatalogueColumns, ScratchBase):
    __tablename__ = "scratch_gadgets"


class GadgetOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    title: str
    category: str
    price: Decimal
    created_at: datetime


class GadgetFilter(FilterSet):
    category: Annotated[str | None, eq(Gadget.category)] = None
    min_price: Annotated[Decimal | None, gte(Gadget.price), Field(ge=0)] = None
    max_price: Annotated[Decimal | None, lte(Gadget.price), Field(ge=0)] = None
    q: Annotated[str | None, icontains(Gadget.title), Field(min_length=1, max_length=60)] = None


@dataclass(frozen=True)
class Row:
    id: int
    title: str
    category: str
    price: Decimal
    created_at: datetime


CATEGORIES = ["books", "games", "tools"]
SPECIAL_TITLES = ["50% off", "500 things", "a_b", "axb", "back\\slash", "Mixed CASE"]
START = datetime(2024, 1, 1, tzinfo=UTC)


@pytest_asyncio.fixture
async def gadgets(db_session: AsyncSession) -> list[Row]:
    """80 rows with repeated prices and timestamps (ties the ordering must break by id)."""

    def create(sync_session: Session) -> None:
        ScratchBase.metadata.create_all(sync_session.connection())

    await db_session.run_sync(create)
    rng = random.Random(7)
    values = []
    for i in range(80):
        title = SPECIAL_TITLES[i] if i < len(SPECIAL_TITLES) else f"Gadget {rng.randint(0, 30)}"
        values.append(
            {
                "title": title,
                "category": rng.choice(CATEGORIES),
                "price": Decimal(rng.randint(0, 20)) / 2,
                "created_at": START + timedelta(hours=rng.randint(0, 10)),
            }
        )
    created = await db_session.scalars(insert(Gadget).returning(Gadget), values)
    rows = [Row(g.id, g.title, g.category, g.price, g.created_at) for g in created]
    db_session.expunge_all()
    return sorted(rows, key=lambda r: r.id)


def brute_force(rows: list[Row], f: GadgetFilter) -> list[Row]:
    out = []
    for r in rows:
        if f.category is not None and r.category != f.category:
            continue
        if f.min_price is not None and r.price < f.min_price:
            continue
        if f.max_price is not None and r.price > f.max_price:
            continue
        if f.q is not None and f.q.lower() not in r.title.lower():
            continue
        out.append(r)
    return out


prices = st.none() | st.integers(0, 21).map(lambda n: Decimal(n) / 2)
filters_strategy: st.SearchStrategy[dict[str, Any]] = st.builds(
    dict,
    category=st.none() | st.sampled_from([*CATEGORIES, "none-such"]),
    min_price=prices,
    max_price=prices,
    q=st.none() | st.text(alphabet="abgx0 5%_\\C", min_size=1, max_size=3),
)
hypothesis_settings = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def make_filter(kwargs: dict[str, Any]) -> GadgetFilter | None:
    try:
        return GadgetFilter(**kwargs)
    except ValidationError:
        lo, hi = kwargs["min_price"], kwargs["max_price"]
        assert lo is not None  # a range upside down is the only reason to refuse
        assert hi is not None
        assert lo > hi
        return None


# --- offset pages ------------------------------------------------------------------------------


@pytest.mark.parametrize("columns", [False, True], ids=["orm", "columns_in_one_statement"])
@hypothesis_settings
@given(kwargs=filters_strategy, skip=st.integers(0, 90), limit=st.integers(1, 30))
async def test_offset_pages_agree_with_a_brute_force_filter(
    db_session: AsyncSession,
    gadgets: list[Row],
    columns: bool,
    kwargs: dict[str, Any],
    skip: int,
    limit: int,
) -> None:
    """`paginate` on ORM objects, and `paginate_rows` on plain columns (the rows and their total
    in one statement)."""
    f = make_filter(kwargs)
    if f is None:
        return
    expected = brute_force(gadgets, f)
    stmt = f.apply(select(Gadget)).order_by(Gadget.id)
    params = PageParams(skip=skip, limit=limit)
    if columns:
        cols = (Gadget.id, Gadget.title, Gadget.category, Gadget.price, Gadget.created_at)
        page = await paginate_rows(
            db_session, stmt.with_only_columns(*cols), params, schema=GadgetOut
        )
    else:
        page = await paginate(db_session, stmt, params, schema=GadgetOut)
    assert page.total == len(expected)
    assert [(g.id, g.price) for g in page.items] == [
        (r.id, r.price) for r in expected[skip : skip + limit]
    ]
    assert page.pages == -(-len(expected) // limit)
    assert page.page == skip // limit + 1


async def test_paginate_rows_reads_the_total_with_the_window(
    db_session: AsyncSession, gadgets: list[Row], assert_num_queries: QueryAssert
) -> None:
    stmt = select(Gadget.id, Gadget.title, Gadget.category, Gadget.price, Gadget.created_at)
    stmt = stmt.where(Gadget.category == "books").order_by(Gadget.price, Gadget.id)
    with assert_num_queries(1) as counter:
        page = await paginate_rows(db_session, stmt, PageParams(limit=5), schema=GadgetOut)
    (page_sql,) = counter.statements
    assert "(SELECT count(*) AS count_1 FROM (SELECT" in page_sql
    assert page.total == sum(r.category == "books" for r in gadgets)
    with assert_num_queries(2):
        past = await paginate_rows(
            db_session, stmt, PageParams(skip=page.total, limit=5), schema=GadgetOut
        )
    assert (past.items, past.total) == ([], page.total)


async def test_paginate_counts_in_the_database_without_loading_rows(
    db_session: AsyncSession, gadgets: list[Row], assert_num_queries: QueryAssert
) -> None:
    stmt = select(Gadget).where(Gadget.category == "books").order_by(Gadget.price, Gadget.id)
    with assert_num_queries(2) as counter:
        page = await paginate(db_session, stmt, PageParams(limit=5), schema=GadgetOut)
    count_sql, page_sql = counter.statements
    assert count_sql.startswith("SELECT count(*) AS count_1 FROM (SELECT")
    assert "ORDER BY" not in count_sql
    assert "LIMIT" in page_sql
    assert "OFFSET" in page_sql
    assert page.total == sum(r.category == "books" for r in gadgets)


async def test_a_page_past_the_end_is_empty_and_costs_only_the_count(
    db_session: AsyncSession, gadgets: list[Row], assert_num_queries: QueryAssert
) -> None:
    with assert_num_queries(1):
        page = await paginate(
            db_session,
            select(Gadget).order_by(Gadget.id),
            PageParams(skip=80, limit=10),
            schema=GadgetOut,
        )
    assert (page.items, page.total, page.page, page.pages) == ([], 80, 9, 8)


async def test_an_empty_result_has_no_pages(db_session: AsyncSession, gadgets: list[Row]) -> None:
    f = GadgetFilter(category="none-such")
    page = await paginate(
        db_session, f.apply(select(Gadget)).order_by(Gadget.id), PageParams(), schema=GadgetOut
    )
    assert (page.items, page.total, page.page, page.pages) == ([], 0, 1, 0)


async def test_the_last_partial_page_holds_the_remainder(
    db_session: AsyncSession, gadgets: list[Row]
) -> None:
    stmt = select(Gadget).order_by(Gadget.id)
    page = await paginate(db_session, stmt, PageParams(skip=75, limit=25), schema=GadgetOut)
    assert [g.id for g in page.items] == [r.id for r in gadgets[75:]]
    assert (page.page, page.pages) == (4, 4)


@pytest.mark.parametrize(
    ("q", "titles"),
    [
        ("50%", ["50% off"]),
        ("a_b", ["a_b"]),
        ("\\", ["back\\slash"]),
        ("mixed case", ["Mixed CASE"]),
    ],
)
async def test_text_search_matches_wildcards_literally(
    db_session: AsyncSession, gadgets: list[Row], q: str, titles: list[str]
) -> None:
    found = await db_session.scalars(GadgetFilter(q=q).apply(select(Gadget.title)))
    assert sorted(found) == titles


# --- keyset pages ------------------------------------------------------------------------------


async def walk(
    session: AsyncSession, stmt: Any, keyset: Keyset, limit: int, counter: Callable[[int], Any]
) -> list[int]:
    """Every id, following next_cursor from the first page to the last (one query a page)."""
    ids: list[int] = []
    cursor = None
    for _ in range(200):
        with counter(1):
            page = await paginate_keyset(
                session, stmt, keyset, CursorParams(cursor=cursor, limit=limit), schema=GadgetOut
            )
        assert len(page.items) <= limit
        ids += [g.id for g in page.items]
        cursor = page.next_cursor
        if cursor is None:
            return ids
    raise AssertionError("the walk did not end")


KEYSETS: dict[str, tuple[Keyset, Callable[[Row], Any]]] = {
    "price desc, id desc": (
        Keyset(SortKey(Gadget.price, descending=True), SortKey(Gadget.id, descending=True)),
        lambda r: (-r.price, -r.id),
    ),
    "category, price desc, id": (
        Keyset(Gadget.category, SortKey(Gadget.price, descending=True), Gadget.id),
        lambda r: (r.category, -r.price, r.id),
    ),
    "created_at desc, id desc": (
        Keyset(SortKey(Gadget.created_at, descending=True), SortKey(Gadget.id, descending=True)),
        lambda r: (-r.created_at.timestamp(), -r.id),
    ),
}


@hypothesis_settings
@given(
    kwargs=filters_strategy,
    order=st.sampled_from(sorted(KEYSETS)),
    limit=st.integers(1, 25),
)
async def test_keyset_pages_walk_the_brute_force_order_exactly_once(
    db_session: AsyncSession,
    gadgets: list[Row],
    assert_num_queries: QueryAssert,
    kwargs: dict[str, Any],
    order: str,
    limit: int,
) -> None:
    f = make_filter(kwargs)
    if f is None:
        return
    keyset, sort_key = KEYSETS[order]
    expected = [r.id for r in sorted(brute_force(gadgets, f), key=sort_key)]
    got = await walk(db_session, f.apply(select(Gadget)), keyset, limit, assert_num_queries)
    assert got == expected


async def test_the_last_keyset_page_has_no_next_cursor(
    db_session: AsyncSession, gadgets: list[Row]
) -> None:
    keyset = Keyset(Gadget.id)
    page = await paginate_keyset(
        db_session, select(Gadget), keyset, CursorParams(limit=80), schema=GadgetOut
    )
    assert len(page.items) == 80
    assert page.next_cursor is None  # exactly a full page, and nothing after it
