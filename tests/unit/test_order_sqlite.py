"""Placing an order on the embedded backend (SQLite): the stock reservation's
`UPDATE … RETURNING (SELECT price …)` must return each line's own item price there too, where
SQLite renders the correlated subquery's columns unqualified."""

from __future__ import annotations

from decimal import Decimal

import fakeredis
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from patterns.db import Database, session_scope
from patterns.errors import BusinessRuleError
from reference_app.core.config import Settings
from reference_app.core.state import AppState, app_state
from reference_app.main import create_app
from reference_app.models import Inventory, Order
from reference_app.schemas.order import OrderCreate
from reference_app.services.orders import place_order
from tests.factories import ItemFactory, UserFactory


def _state(database: Database) -> AppState:
    """The app's state on this database, its lifespan not run: no relay publishes the outbox
    row (the tests look at the rows)."""
    settings = Settings(env="test", cache_warm_on_startup=False, _env_file=None)
    return app_state(create_app(settings, database=database, redis=fakeredis.FakeAsyncRedis()))


async def _place(
    session: AsyncSession, database: Database, user_id: int, order_in: OrderCreate
) -> tuple[Order, bool]:
    return await place_order(
        session,
        _state(database),
        user_id,
        order_in,
        idempotency_key=None,
    )


async def _stocked(database: Database, prices: list[str], stock: int) -> tuple[int, list[int]]:
    async with session_scope(database.sessionmaker) as session:
        owner = await UserFactory.create_async(session, email="owner@example.com")
        items = [
            await ItemFactory.create_async(
                session, title=f"i{n}", price=Decimal(p), owner=owner, stock=stock
            )
            for n, p in enumerate(prices)
        ]
        return owner.id, [item.id for item in items]


async def test_each_line_gets_its_own_items_price(database: Database) -> None:
    user_id, ids = await _stocked(database, ["1.50", "7.25", "30.00"], stock=5)
    order_in = OrderCreate.model_validate(
        {"items": [{"id": ids[2], "quantity": 1}, {"id": ids[0], "quantity": 2}]}
    )
    async with session_scope(database.sessionmaker) as session:
        order, created = await _place(session, database, user_id, order_in)
        assert created
        assert {line.item_id: line.unit_price for line in order.lines} == {
            ids[0]: Decimal("1.50"),
            ids[2]: Decimal("30.00"),
        }
        assert order.total == Decimal("33.00")
    async with session_scope(database.sessionmaker) as session:
        stock = dict((await session.execute(select(Inventory.item_id, Inventory.quantity))).all())
    assert stock == {ids[0]: 3, ids[1]: 5, ids[2]: 4}


async def test_short_stock_is_refused_and_nothing_changes(database: Database) -> None:
    user_id, ids = await _stocked(database, ["2.00"], stock=1)
    order_in = OrderCreate.model_validate({"items": [{"id": ids[0], "quantity": 2}]})
    with pytest.raises(BusinessRuleError):
        async with session_scope(database.sessionmaker) as session:
            await _place(session, database, user_id, order_in)
    async with session_scope(database.sessionmaker) as session:
        assert await session.scalar(select(Inventory.quantity)) == 1
