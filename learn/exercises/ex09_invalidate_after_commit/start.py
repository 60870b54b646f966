"""Exercise 9 — cache invalidation after the commit (guide: "Cache Invalidation").

Products are read through a Redis cache (`read_product` and `product_key`, given).
`update_price` changes a price and drops the cached copy. Today it drops the copy before the
commit: a request arriving in between reads the old row (the new price is not committed yet)
and caches it again, and the stale price then stays for the cache's whole lifetime. Make the
invalidation happen after the commit.
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
    await redis.delete(product_key(product_id))
    await session.commit()
