"""PF003 wrong: the price changes in the database, the cached item keeps the old one (guide:
"Cache Invalidation")."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from patterns.cache import Cache, CacheSpec
from reference_app.models import Item
from reference_app.schemas.item import ItemResponse

ITEM = CacheSpec("pf003.item", ttl=3600)


async def get_item(session: AsyncSession, cache: Cache, item_id: int) -> ItemResponse:
    async def load() -> Item | None:
        return await session.get(Item, item_id)

    return await cache.get_or_set(ITEM, load, parts={"id": item_id}, model=ItemResponse)


async def update_price(session: AsyncSession, cache: Cache, item_id: int, price: Decimal) -> None:
    await session.execute(update(Item).where(Item.id == item_id).values(price=price))
    # Nothing tells the cache: every reader gets the old price until the TTL ends (an hour).
