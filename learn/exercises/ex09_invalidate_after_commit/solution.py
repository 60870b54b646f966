"""Exercise 9 — cache invalidation after the commit (guide: "Cache Invalidation").

The cached copy is dropped once the new row is committed, so any read that fills the cache
again reads the new price. (With the kit's session scope, `patterns.db.session.on_commit`
registers the same deletion to run after the request's commit.)
"""

from __future__ import annotations

from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession

from learn.models import Product
from learn.support import product_key


async def update_price(
    session: AsyncSession, redis: Redis, product_id: int, price_cents: int
) -> None:
    product = await session.get_one(Product, product_id)
    product.price_cents = price_cents
    await session.commit()
    await redis.delete(product_key(product_id))
