"""Order data access (guide: "Order Processing Flow", "Query Optimization")."""

from __future__ import annotations

from typing import ClassVar

from pydantic import BaseModel
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload
from sqlalchemy.orm.interfaces import ORMOption

from patterns.crud import CRUDBase
from reference_app.models.order import Order


class CRUDOrder(CRUDBase[Order, BaseModel, BaseModel]):
    loadable: ClassVar[dict[str, ORMOption]] = {
        "lines": selectinload(Order.lines),
        "payment": selectinload(Order.payment),
    }
    # An order's response shows its lines and payment: one extra query each, whatever the page.
    details: ClassVar[tuple[ORMOption, ...]] = tuple(loadable.values())

    async def lock_idempotency_key(self, session: AsyncSession, user_id: int, key: str) -> None:
        """Two retries with one key wait for each other here instead of racing to insert (a
        transaction-scoped advisory lock; SQLite has one writer at a time anyway)."""
        if session.get_bind().dialect.name == "postgresql":
            await session.execute(
                text("SELECT pg_advisory_xact_lock(:uid, hashtext(:key))"),
                {"uid": user_id, "key": key},
            )

    async def get_by_idempotency_key(
        self, session: AsyncSession, user_id: int, key: str
    ) -> Order | None:
        return await session.scalar(
            select(Order)
            .where(Order.user_id == user_id, Order.idempotency_key == key)
            .options(*self.details)
        )


orders = CRUDOrder(Order)
