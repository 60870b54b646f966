"""Exercise 13 — an atomic stock decrement under concurrency (guide: "Order Processing Flow").

One conditional UPDATE: PostgreSQL checks `stock >= quantity` and decrements under the row's
lock, so concurrent reservations queue on the row and each sees the stock the previous one
left. `RETURNING` says whether a row was changed. (`SELECT … FOR UPDATE` then the check in
Python is the other correct answer: it holds the lock across the round trip.)
"""

from __future__ import annotations

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from learn.models import Product


async def reserve(session: AsyncSession, product_id: int, quantity: int) -> bool:
    result = await session.execute(
        update(Product)
        .where(Product.id == product_id, Product.stock >= quantity)
        .values(stock=Product.stock - quantity)
        .returning(Product.id)
    )
    reserved = result.scalar_one_or_none() is not None
    await session.commit()
    return reserved
