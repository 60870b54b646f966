"""PF010 wrong: `process_order` is sent while the order's transaction is still open, as the guide
sends it inside `with db.begin()` (guide: "Order Processing Flow")."""

from __future__ import annotations

import uuid
from decimal import Decimal

from celery import Celery
from sqlalchemy.ext.asyncio import AsyncSession

from reference_app.models import Order, Payment
from reference_app.worker.tasks import PROCESS_ORDER


async def place_order(session: AsyncSession, celery: Celery, user_id: int, total: Decimal) -> int:
    order = Order(user_id=user_id, total=total)
    order.payment = Payment(amount=total, reference=f"pay_{uuid.uuid4().hex}")
    session.add(order)
    await session.flush()  # the order has an id; no other connection sees it before the commit
    # On the broker now: a worker may run it before the commit (no such order yet) or for an
    # order whose transaction then rolls back (no such order ever).
    celery.send_task(PROCESS_ORDER, args=[order.id])
    return order.id
