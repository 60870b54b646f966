"""PF010 right: what the kit's order service does (`patterns.tasks.send_after_commit`): the task
is published once the transaction has committed, and never for a rollback (guide: "Order
Processing Flow")."""

from __future__ import annotations

import uuid
from decimal import Decimal

from celery import Celery
from sqlalchemy.ext.asyncio import AsyncSession

from patterns.tasks import send_after_commit
from reference_app.models import Order, Payment
from reference_app.worker.tasks import PROCESS_ORDER


async def place_order(session: AsyncSession, celery: Celery, user_id: int, total: Decimal) -> int:
    order = Order(user_id=user_id, total=total)
    order.payment = Payment(amount=total, reference=f"pay_{uuid.uuid4().hex}")
    session.add(order)
    await session.flush()
    # Registered on the session: the session scope publishes it after COMMIT, drops it on ROLLBACK.
    send_after_commit(session, celery.signature(PROCESS_ORDER), args=(order.id,), countdown=0)
    return order.id
