"""PF008 right: one conditional UPDATE checks and decrements, as the kit's
`reference_app/crud/order.py` does (guide: "Order Processing Flow")."""

from __future__ import annotations

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from patterns.errors import BusinessRuleError
from reference_app.models import Inventory


async def buy(session: AsyncSession, item_id: int, quantity: int) -> None:
    # The row is locked by the UPDATE; a concurrent buyer waits, then PostgreSQL re-checks
    # `quantity >= :quantity` against the committed value before decrementing.
    remaining = await session.scalar(
        update(Inventory)
        .where(Inventory.item_id == item_id, Inventory.quantity >= quantity)
        .values(quantity=Inventory.quantity - quantity)
        .returning(Inventory.quantity)
    )
    if remaining is None:
        raise BusinessRuleError("Insufficient stock.", code="insufficient_stock")
