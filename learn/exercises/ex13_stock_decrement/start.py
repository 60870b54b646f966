"""Exercise 13 — an atomic stock decrement under concurrency (guide: "Order Processing Flow").

`reserve` takes `quantity` off a product's stock if there is enough, in its own transaction,
and says whether it did. Many API requests call it at once for the same product. Today it reads
the stock, checks it in Python, then writes the new value: concurrent buyers all read the same
stock, all pass the check, and the shop sells more than it has. Make the check and the
decrement one atomic step in PostgreSQL.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from learn.models import Product


async def reserve(session: AsyncSession, product_id: int, quantity: int) -> bool:
    product = await session.get_one(Product, product_id)
    if product.stock < quantity:
        return False
    product.stock -= quantity
    await session.commit()
    return True
