"""What PF004's cached functions compute: the same loaders for the wrong and the right version."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from reference_app.models import Item, Order, User


async def user_data(session: AsyncSession, user_id: int, data_type: str) -> list[str]:
    """A user's item titles ("items") or order totals ("orders")."""
    if data_type == "items":
        stmt = select(Item.title).where(Item.owner_id == user_id).order_by(Item.id)
        return list(await session.scalars(stmt))
    totals = await session.scalars(select(Order.total).where(Order.user_id == user_id))
    return [f"order of {total}" for total in totals]


async def profile(session: AsyncSession, user_id: int) -> dict[str, Any]:
    user = await session.get_one(User, user_id)
    return {"id": user.id, "email": user.email, "full_name": user.full_name}
