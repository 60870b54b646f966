"""Exercise 9's check: a reader racing the update on real PostgreSQL and Redis.

The check's Redis client runs a concurrent request's read the moment the key is deleted: the
worst timing a real reader could have, made deterministic.
"""

from types import ModuleType
from typing import Any

import pytest
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from learn.models import Product
from learn.support import product_key, read_product


class RacingRedis:
    """Redis, plus a concurrent read-through right after each deletion of a product key."""

    def __init__(self, redis: Redis, sessions: async_sessionmaker[AsyncSession], pid: int) -> None:
        self._redis, self._sessions, self._pid = redis, sessions, pid
        self.deleted = 0

    async def _deleted(self, keys: tuple[Any, ...]) -> None:
        if product_key(self._pid) in {k.decode() if isinstance(k, bytes) else k for k in keys}:
            self.deleted += 1
            async with self._sessions() as other_request:
                await read_product(other_request, self._redis, self._pid)

    async def delete(self, *keys: Any) -> int:
        count = await self._redis.delete(*keys)
        await self._deleted(keys)
        return int(count)

    async def unlink(self, *keys: Any) -> int:
        count = await self._redis.unlink(*keys)
        await self._deleted(keys)
        return int(count)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._redis, name)


@pytest.mark.integration
async def test_the_cache_shows_the_new_price(
    learner: ModuleType, committed_db: async_sessionmaker[AsyncSession], redis_client: Redis
) -> None:
    async with committed_db() as session:
        product = Product(name="lamp", category="tools", price_cents=1000, stock=1)
        session.add(product)
        await session.commit()
        assert (await read_product(session, redis_client, product.id))["price_cents"] == 1000
    racing = RacingRedis(redis_client, committed_db, product.id)
    async with committed_db() as session:
        await learner.update_price(session, racing, product.id, 1500)
    async with committed_db() as session:
        stored = await session.get_one(Product, product.id)
        served = (await read_product(session, redis_client, product.id))["price_cents"]
    assert stored.price_cents == 1500, "the new price was not committed"
    assert racing.deleted, "update_price never deleted the product's cache entry"
    assert served == 1500, (
        f"the price is 1500 in the database but the cache serves {served}: a request that read "
        "between your delete and your commit cached the old row again. Delete after the commit."
    )
