"""PF001 right: the items come with their users in one query, whatever N is (guide:
"N+1 Query Problem")."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import joinedload

from reference_app.models import User


async def items_by_owner(session: AsyncSession) -> dict[str, list[str]]:
    # users LEFT OUTER JOIN items; unique() folds the joined rows back into one User each.
    stmt = select(User).options(joinedload(User.items)).order_by(User.id)
    users = (await session.scalars(stmt)).unique().all()
    return {user.email: [item.title for item in user.items] for user in users}
