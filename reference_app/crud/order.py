"""Order data access (guide: "Order Processing Flow", "Query Optimization")."""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar

from pydantic import BaseModel
from sqlalchemy import Integer, select, text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload
from sqlalchemy.orm.interfaces import ORMOption

from patterns.crud import CRUDBase
from patterns.db import utcnow
from patterns.observability.request_id import get_request_id
from reference_app.models.order import Order, OrderStatus, PaymentStatus
from reference_app.models.outbox import OutboxMessage
from reference_app.models.profile import Activity

# Five data-modifying CTEs in one statement: the order, its lines (one row per element of the
# arrays), its payment intent, the user's activity and the outbox row whose arguments are the new
# order's id. Written once as SQL (text), so it is parsed and compiled once per process; each
# parameter's type is spelled where PostgreSQL could not infer it.
_INSERT_PLACED = text(
    """
    WITH new_order AS (
        INSERT INTO orders
            (user_id, status, total, idempotency_key, request_hash, created_at, updated_at)
        VALUES (:user_id, :status, :total, :idempotency_key, :request_hash, :now, :now)
        RETURNING id
    ), new_lines AS (
        INSERT INTO order_items (order_id, item_id, quantity, unit_price, created_at, updated_at)
        SELECT new_order.id, line.item_id, line.quantity, line.unit_price,
               CAST(:now AS TIMESTAMPTZ), CAST(:now AS TIMESTAMPTZ)
        FROM new_order, unnest(
            CAST(:item_ids AS INTEGER[]),
            CAST(:quantities AS INTEGER[]),
            CAST(:unit_prices AS NUMERIC[])
        ) AS line (item_id, quantity, unit_price)
    ), new_payment AS (
        INSERT INTO payments (order_id, amount, status, reference, created_at, updated_at)
        SELECT id, CAST(:amount AS NUMERIC), CAST(:payment_status AS VARCHAR),
               CAST(:reference AS VARCHAR), CAST(:now AS TIMESTAMPTZ), CAST(:now AS TIMESTAMPTZ)
        FROM new_order
    ), new_activity AS (
        INSERT INTO activities (user_id, kind, detail, created_at, updated_at)
        VALUES (:user_id, :activity_kind, :activity_detail, :now, :now)
    ), new_outbox AS (
        INSERT INTO outbox (task, args, not_before, request_id, created_at)
        SELECT CAST(:task AS VARCHAR), json_build_array(id), CAST(:not_before AS TIMESTAMPTZ),
               CAST(:request_id AS VARCHAR), CAST(:now AS TIMESTAMPTZ)
        FROM new_order
    )
    SELECT id FROM new_order
    """
).columns(id=Integer)


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

    async def insert_placed(
        self,
        session: AsyncSession,
        order: Order,
        *,
        activity: Activity,
        task: str,
        not_before: datetime,
    ) -> None:
        """Write a new `order` (built with its `lines` and `payment`), the user's `activity` row
        and the outbox row that has the relay publish `task(order.id)` from `not_before`; set
        `order.id`. All in the caller's transaction: the task exists if and only if the order
        commits (`reference_app.models.outbox`).

        On PostgreSQL this is one statement, whatever the number of lines (`_INSERT_PLACED`).
        `order` then stays out of the session: every attribute the response reads was set here,
        and the session has nothing left to flush. Elsewhere (SQLite, the embedded default) the
        unit of work writes the same rows.
        """
        payment = order.payment
        if payment is None:
            raise ValueError("an order is placed with its payment intent")
        now = utcnow()
        order.created_at = order.updated_at = now
        order.status = order.status or OrderStatus.PENDING.value
        payment.status = payment.status or PaymentStatus.REQUIRES_PAYMENT.value
        if session.get_bind().dialect.name != "postgresql":
            session.add_all([order, activity])
            await session.flush()  # the order's id, for the task's arguments
            session.add(OutboxMessage(task=task, args=[order.id], not_before=not_before))
            return
        order.id = await session.scalar(
            _INSERT_PLACED,
            {
                "now": now,
                "user_id": order.user_id,
                "status": order.status,
                "total": order.total,
                "idempotency_key": order.idempotency_key,
                "request_hash": order.request_hash,
                "item_ids": [line.item_id for line in order.lines],
                "quantities": [line.quantity for line in order.lines],
                "unit_prices": [line.unit_price for line in order.lines],
                "amount": payment.amount,
                "payment_status": payment.status,
                "reference": payment.reference,
                "activity_kind": activity.kind,
                "activity_detail": activity.detail,
                "task": task,
                "not_before": not_before,
                "request_id": get_request_id(),
            },
        )


orders = CRUDOrder(Order)
