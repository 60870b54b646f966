"""Exercise 13's check: twelve buyers at once for five items, on real PostgreSQL (real commits,
a connection each)."""

import asyncio
from types import ModuleType

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from learn.models import Product


async def _product(sessions: async_sessionmaker[AsyncSession], stock: int) -> int:
    async with sessions() as session:
        product = Product(name="lamp", category="tools", price_cents=1000, stock=stock)
        session.add(product)
        await session.commit()
        return product.id


async def _stock(sessions: async_sessionmaker[AsyncSession], product_id: int) -> int:
    async with sessions() as session:
        return (await session.get_one(Product, product_id)).stock


@pytest.mark.integration
async def test_concurrent_buyers_never_oversell(
    learner: ModuleType, committed_db: async_sessionmaker[AsyncSession]
) -> None:
    product_id = await _product(committed_db, stock=5)

    async def buyer() -> bool:
        async with committed_db() as session:
            return bool(await learner.reserve(session, product_id, 1))

    answers = await asyncio.gather(*(buyer() for _ in range(12)))
    sold, left = sum(answers), await _stock(committed_db, product_id)
    assert (sold, left) == (5, 0), (
        f"12 buyers at once for 5 items: {sold} were told yes and the stock is now {left}. "
        "Reading the stock and writing it back lets them all see 5; let PostgreSQL check and "
        "decrement in one UPDATE … WHERE stock >= quantity"
    )


@pytest.mark.integration
async def test_too_much_is_refused(
    learner: ModuleType, committed_db: async_sessionmaker[AsyncSession]
) -> None:
    product_id = await _product(committed_db, stock=3)
    async with committed_db() as session:
        refused = await learner.reserve(session, product_id, 4)
    async with committed_db() as session:
        taken = await learner.reserve(session, product_id, 3)
    assert (refused, taken) == (False, True), (
        f"with 3 in stock, reserving 4 answered {refused} and then 3 answered {taken}"
    )
    assert await _stock(committed_db, product_id) == 0
