"""Order data access (guide: "Order Processing Flow", "Query Optimization")."""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar

from pydantic import BaseModel
from sqlalchemy import Integer, Numeric, column, func, insert, literal, select, text, true, values
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload
from sqlalchemy.orm.interfaces import ORMOption

from patterns.crud import CRUDBase
from patterns.db import UTCDateTime, utcnow
from reference_app.models.order import Order, OrderItem, OrderStatus, Payment, PaymentStatus
from reference_app.models.outbox import OUTBOX_CHANNEL, OutboxMessage
from reference_app.models.profile import Activity


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

        On PostgreSQL this is one statement, whatever the number of lines: five data-modifying
        CTEs (order, lines, payment, activity, outbox row) and a `pg_notify` that wakes the relay
        when the transaction commits. `order` then stays out of the session: every attribute the
        response reads was set here, and the session has nothing left to flush. Elsewhere
        (SQLite, the embedded default) the unit of work writes the same rows.
        """
        now = utcnow()
        order.created_at = order.updated_at = now
        order.status = order.status or OrderStatus.PENDING.value
        payment = order.payment
        if payment is not None:
            payment.status = payment.status or PaymentStatus.REQUIRES_PAYMENT.value
        if session.get_bind().dialect.name != "postgresql":
            session.add_all([order, activity])
            await session.flush()  # the order's id, for the task's arguments
            session.add(OutboxMessage(task=task, args=[order.id], not_before=not_before))
            return
        stamp = literal(now, UTCDateTime())
        new_order = (
            insert(Order)
            .values(
                user_id=order.user_id,
                status=order.status,
                total=order.total,
                idempotency_key=order.idempotency_key,
                request_hash=order.request_hash,
                created_at=now,
                updated_at=now,
            )
            .returning(Order.id)
            .cte("new_order")
        )
        line_rows = values(
            column("item_id", Integer),
            column("quantity", Integer),
            column("unit_price", Numeric(10, 2)),
            name="line_rows",
        ).data([(line.item_id, line.quantity, line.unit_price) for line in order.lines])
        new_lines = insert(OrderItem).from_select(
            ["order_id", "item_id", "quantity", "unit_price", "created_at", "updated_at"],
            select(new_order.c.id, *line_rows.c, stamp, stamp).select_from(
                new_order.join(line_rows, true())
            ),
        )
        writes = [
            new_lines.cte("new_lines"),
            insert(Activity)
            .values(
                user_id=activity.user_id,
                kind=activity.kind,
                detail=activity.detail,
                created_at=now,
                updated_at=now,
            )
            .cte("new_activity"),
            insert(OutboxMessage)
            .from_select(
                ["task", "args", "not_before", "created_at"],
                select(
                    literal(task),
                    func.json_build_array(new_order.c.id),
                    literal(not_before, UTCDateTime()),
                    stamp,
                ),
            )
            .cte("new_outbox"),
        ]
        if payment is not None:
            new_payment = insert(Payment).from_select(
                ["order_id", "amount", "status", "reference", "created_at", "updated_at"],
                select(
                    new_order.c.id,
                    literal(payment.amount, Numeric(12, 2)),
                    literal(payment.status),
                    literal(payment.reference),
                    stamp,
                    stamp,
                ),
            )
            writes.append(new_payment.cte("new_payment"))
        statement = select(new_order.c.id, func.pg_notify(OUTBOX_CHANNEL, "")).add_cte(*writes)
        order.id = (await session.execute(statement)).one()[0]


orders = CRUDOrder(Order)
