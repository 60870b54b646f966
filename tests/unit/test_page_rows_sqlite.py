"""The items page in one statement (`paginate_rows`, `get_page(columns_only=True)`) on the
embedded backend (SQLite): the total as a scalar subquery column, and the COUNT that follows a
window past the end, must give the same pages as on PostgreSQL."""

from __future__ import annotations

from decimal import Decimal

import pytest

from patterns.db import Database, session_scope
from patterns.db.queries import count_queries
from patterns.pagination import PageParams
from reference_app.crud.item import items
from reference_app.models.item import Item
from reference_app.schemas.item import ItemFilter, ItemResponse
from tests.factories import ItemFactory, UserFactory


async def _seed(database: Database, n: int) -> list[int]:
    async with session_scope(database.sessionmaker) as session:
        owner = await UserFactory.create_async(session, email="owner@example.com")
        made = [
            await ItemFactory.create_async(
                session,
                title=f"i{k}",
                category="odd" if k % 2 else "even",
                price=Decimal(k),
                owner=owner,
            )
            for k in range(n)
        ]
        return [item.id for item in made]


@pytest.mark.parametrize(
    ("skip", "limit", "category", "expected", "statements"),
    [
        (0, 10, None, slice(0, 10), 1),
        (20, 10, None, slice(20, 25), 1),
        (30, 10, None, slice(0, 0), 2),  # past the end: the COUNT follows
        (0, 10, "none-such", slice(0, 0), 1),  # an empty first window is a total of 0
        (2, 3, "odd", slice(2, 5), 1),
    ],
)
async def test_the_page_in_one_statement_on_sqlite(
    database: Database,
    skip: int,
    limit: int,
    category: str | None,
    expected: slice,
    statements: int,
) -> None:
    ids = await _seed(database, 25)
    matching = {None: ids, "odd": ids[1::2], "none-such": []}[category]
    async with database.read_sessionmaker() as session:
        with count_queries(database.engine) as counter:
            page = await items.get_page(
                session,
                PageParams(skip=skip, limit=limit),
                schema=ItemResponse,
                filters=ItemFilter(category=category),
                columns_only=True,
            )
    assert counter.count == statements, counter.report()
    assert [i.id for i in page.items] == matching[expected]
    assert page.total == len(matching)
    assert all(isinstance(i, ItemResponse) for i in page.items)
    if page.items:
        first = page.items[0]
        assert (first.title, first.price) == (f"i{first.id - ids[0]}", Decimal(first.id - ids[0]))


async def test_pending_changes_are_flushed_before_the_page_is_read(database: Database) -> None:
    """The statement runs on the session's connection, past the ORM's autoflush: the page
    flushes what the session holds first, as a query through the session would."""
    ids = await _seed(database, 3)
    async with session_scope(database.sessionmaker) as session:
        added = ItemFactory.build(title="pending", price=Decimal(1), owner_id=1)
        session.add(added)
        doomed = await session.get(Item, ids[0])
        await session.delete(doomed)
        page = await items.get_page(
            session, PageParams(limit=10), schema=ItemResponse, columns_only=True
        )
        assert [i.title for i in page.items] == ["i1", "i2", "pending"]
        assert page.total == 3
