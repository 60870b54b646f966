"""The harness itself: isolation, committed data, Redis per worker, the query counter, factories."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from decimal import Decimal

import pytest
from redis.asyncio import Redis
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from patterns.db.queries import QueryCounter
from patterns.security import PasswordHasher
from reference_app.models import Inventory, OrderItem, Payment, User
from reference_app.models.user import Role
from tests.factories import ItemFactory, OrderFactory, UserFactory

QueryAssert = Callable[[int], AbstractContextManager[QueryCounter]]
MARKER_EMAIL = "isolation-probe@example.com"


async def _count_marker(session: AsyncSession) -> int:
    result = await session.scalar(
        select(func.count()).select_from(User).where(User.email == MARKER_EMAIL)
    )
    return int(result or 0)


# The two isolation tests run in file order; each proves the other's row is gone.
async def test_isolation_first_writes_and_commits(db_session: AsyncSession) -> None:
    assert await _count_marker(db_session) == 0
    await UserFactory.create_async(db_session, email=MARKER_EMAIL)
    await db_session.commit()  # releases a SAVEPOINT; the outer transaction is rolled back
    assert await _count_marker(db_session) == 1


async def test_isolation_second_sees_nothing_of_the_first(db_session: AsyncSession) -> None:
    assert await _count_marker(db_session) == 0
    await UserFactory.create_async(db_session, email=MARKER_EMAIL)
    await db_session.flush()
    assert await _count_marker(db_session) == 1


async def test_rollback_in_code_under_test_keeps_the_outer_transaction(
    db_session: AsyncSession,
) -> None:
    await UserFactory.create_async(db_session, email="kept@example.com")
    await db_session.commit()
    await UserFactory.create_async(db_session, email="dropped@example.com")
    await db_session.rollback()
    emails = set(await db_session.scalars(select(User.email)))
    assert emails == {"kept@example.com"}


async def test_committed_db_is_visible_on_another_connection_and_cleaned(
    committed_db: async_sessionmaker[AsyncSession], db_engine: AsyncEngine
) -> None:
    async with committed_db() as s:
        await UserFactory.create_async(s, email="committed@example.com")
        await s.commit()
    async with db_engine.connect() as other:
        n = await other.scalar(text("SELECT count(*) FROM users"))
    assert n == 1


async def test_committed_db_cleanup_left_no_rows(db_engine: AsyncEngine) -> None:
    async with db_engine.connect() as conn:
        assert await conn.scalar(text("SELECT count(*) FROM users")) == 0


async def test_redis_starts_empty_in_its_own_logical_database(
    redis_client: Redis, redis_url: str
) -> None:
    assert await redis_client.dbsize() == 0
    await redis_client.set("probe", "1")
    assert redis_url.rsplit("/", 1)[1] != "0"  # never the server's default database


async def test_redis_probe_is_gone_in_the_next_test(redis_client: Redis) -> None:
    assert await redis_client.get("probe") is None


async def test_assert_num_queries_counts_statements_not_savepoints(
    db_session: AsyncSession, assert_num_queries: QueryAssert
) -> None:
    with assert_num_queries(2) as counter:
        await db_session.execute(text("SELECT 1"))
        async with db_session.begin_nested():  # SAVEPOINT / RELEASE are not counted
            await db_session.execute(text("SELECT 2"))
    assert counter.count == 2


async def test_assert_num_queries_failure_shows_the_sql(
    db_session: AsyncSession, assert_num_queries: QueryAssert
) -> None:
    with pytest.raises(AssertionError) as info, assert_num_queries(1):
        await db_session.execute(select(User.email).where(User.id == 1))
        await db_session.execute(select(User.email).where(User.id == 2))
    message = str(info.value)
    assert "expected 1 queries, 2 were run" in message
    assert "SELECT users.email" in message


async def test_assert_max_queries_is_an_upper_bound(
    db_session: AsyncSession, assert_max_queries: QueryAssert
) -> None:
    with assert_max_queries(3):
        await db_session.execute(text("SELECT 1"))
    with pytest.raises(AssertionError, match="at most 1"), assert_max_queries(1):
        await db_session.execute(text("SELECT 1"))
        await db_session.execute(text("SELECT 2"))


async def test_async_factory_creates_in_one_flush(
    db_session: AsyncSession, assert_num_queries: QueryAssert
) -> None:
    with assert_num_queries(1):  # one INSERT … RETURNING for the whole batch
        users = await UserFactory.create_batch_async(db_session, 5)
    assert all(u.id is not None for u in users)
    assert len({u.email for u in users}) == 5
    one = await UserFactory.create_async(db_session, full_name="Ada")
    assert one.full_name == "Ada"


async def test_factories_build_items_with_stock_and_orders_with_lines_and_payment(
    db_session: AsyncSession,
) -> None:
    buyer = await UserFactory.create_async(db_session, role=Role.MANAGER, password="s3cret-pass")
    assert buyer.role == "manager"
    assert PasswordHasher().verify_and_update("s3cret-pass", buyer.hashed_password)[0]
    item = await ItemFactory.create_async(db_session, owner=buyer, price=Decimal("2.50"), stock=7)
    bare = await ItemFactory.create_async(db_session)
    order = await OrderFactory.create_async(db_session, user=buyer, basket=[(item, 2), (bare, 1)])

    stock = await db_session.scalar(select(Inventory.quantity).where(Inventory.item_id == item.id))
    assert stock == 7
    assert await db_session.scalar(select(Inventory.id).where(Inventory.item_id == bare.id)) is None
    assert bare.owner_id != buyer.id
    lines = (
        await db_session.execute(
            select(OrderItem.item_id, OrderItem.quantity, OrderItem.unit_price)
            .where(OrderItem.order_id == order.id)
            .order_by(OrderItem.id)
        )
    ).all()
    assert [tuple(line) for line in lines] == [
        (item.id, 2, Decimal("2.50")),
        (bare.id, 1, bare.price),
    ]
    assert order.total == Decimal("5.00") + bare.price
    payment = await db_session.scalar(select(Payment).where(Payment.order_id == order.id))
    assert payment is not None
    assert payment.amount == order.total


async def test_worker_database_was_built_by_the_migrations(db_session: AsyncSession) -> None:
    version = await db_session.scalar(text("SELECT version_num FROM alembic_version"))
    from alembic.script import ScriptDirectory

    from reference_app.core.migrations import alembic_config

    assert version == ScriptDirectory.from_config(alembic_config()).get_current_head()
