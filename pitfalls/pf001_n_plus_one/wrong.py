"""PF001 wrong: one query for the users, then one more per user for their items (guide:
"N+1 Query Problem")."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from reference_app.models import Item, User


async def items_by_owner(session: AsyncSession) -> dict[str, list[str]]:
    users = (await session.scalars(select(User).order_by(User.id))).all()
    result = {}
    for user in users:
        # A round trip per user: N users cost N + 1 queries.
        titles = await session.scalars(select(Item.title).where(Item.owner_id == user.id))
        result[user.email] = list(titles)
    return result
