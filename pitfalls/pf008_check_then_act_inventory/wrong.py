"""PF008 wrong: read the stock, check it, write the new quantity (guide: "Order Processing
Flow": `check_availability`, then `decrease`)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from patterns.errors import BusinessRuleError
from reference_app.models import Inventory


async def buy(session: AsyncSession, item_id: int, quantity: int) -> None:
    inventory = await session.scalar(select(Inventory).where(Inventory.item_id == item_id))
    if inventory is None or inventory.quantity < quantity:
        raise BusinessRuleError("Insufficient stock.", code="insufficient_stock")
    # Concurrent buyers read the same quantity and passed the same check. The flush writes
    # `SET quantity = <what this request computed>`: the others' sales vanish, and the
    # CHECK (quantity >= 0) never fires because no value written is negative.
    inventory.quantity -= quantity
