"""Exercise 11 — publish the Celery task only after the commit (guide: "Celery Tasks").

`place_order` stores an order and sends `confirm` (a Celery task that loads the order and
emails the customer). Today the task is sent inside the transaction: a worker can pick it up
before the commit, find no order and fail — and if the commit fails, a confirmation goes out
for an order that never existed. Send the task after the commit.
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
    confirm.delay(order.id)
    await session.commit()
    return order.id
