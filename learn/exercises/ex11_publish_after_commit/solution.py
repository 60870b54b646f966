"""Exercise 11 — publish the Celery task only after the commit (guide: "Celery Tasks").

The message leaves once the order is committed, so the worker always finds it; if the commit
fails, nothing is sent. (In a request, `patterns.db.session.on_commit` defers the send to the
session scope's commit; `patterns.tasks` wraps that.)
"""

from __future__ import annotations

from typing import Any

from celery import Task
from sqlalchemy.ext.asyncio import AsyncSession

from learn.support import add_order


async def place_order(
    session: AsyncSession, product_id: int, quantity: int, confirm: Task[Any, Any]
) -> int:
    order = await add_order(session, product_id, quantity)
    await session.commit()
    confirm.delay(order.id)
    return order.id
