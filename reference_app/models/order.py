"""Orders, their lines and payment intents (guide: "Order Processing Flow")."""

from __future__ import annotations

import enum
from decimal import Decimal

from sqlalchemy import (
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from reference_app.models.base import Model


class OrderStatus(enum.StrEnum):
    PENDING = "pending"
    PROCESSING = "processing"
    PROCESSED = "processed"
    FAILED = "failed"
    CANCELLED = "cancelled"


class PaymentStatus(enum.StrEnum):
    REQUIRES_PAYMENT = "requires_payment"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


def _in(values: type[enum.StrEnum]) -> str:
    return ", ".join(f"'{v.value}'" for v in values)


class Order(Model):
    __tablename__ = "orders"
    __table_args__ = (
        CheckConstraint(f"status IN ({_in(OrderStatus)})", name="status_valid"),
        CheckConstraint("total >= 0", name="total_not_negative"),
        # A retried POST with the same Idempotency-Key finds the first order instead of racing it.
        UniqueConstraint("user_id", "idempotency_key", name="uq_orders_user_id_idempotency_key"),
        # The requeue sweep's scan (reference_app/worker/requeue.py), every minute: only the
        # few orders still pending are in it, however many orders the table holds.
        Index(
            "ix_orders_pending",
            "id",
            postgresql_where=text("status = 'pending'"),
            sqlite_where=text("status = 'pending'"),
        ),
    )

    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True
    )
    status: Mapped[str] = mapped_column(
        String(16), nullable=False, default=OrderStatus.PENDING.value
    )
    total: Mapped[Decimal] = mapped_column(Numeric(12, 2), nullable=False)
    idempotency_key: Mapped[str | None] = mapped_column(String(128))
    # SHA-256 of the request body: the same key with a different body is refused, not replayed.
    request_hash: Mapped[str | None] = mapped_column(String(64))

    lines: Mapped[list[OrderItem]] = relationship(
        back_populates="order",
        lazy="raise",
        cascade="all, delete-orphan",
        passive_deletes=True,
        order_by="OrderItem.id",
    )
    payment: Mapped[Payment | None] = relationship(
        back_populates="order", lazy="raise", cascade="all, delete-orphan", passive_deletes=True
    )


class OrderItem(Model):
    """A line: the unit price is captured at order time, so later price changes don't rewrite
    history."""

    __tablename__ = "order_items"
    __table_args__ = (
        CheckConstraint("quantity > 0", name="quantity_positive"),
        CheckConstraint("unit_price >= 0", name="unit_price_not_negative"),
    )

    order_id: Mapped[int] = mapped_column(
        ForeignKey("orders.id", ondelete="CASCADE"), nullable=False, index=True
    )
    item_id: Mapped[int] = mapped_column(
        ForeignKey("items.id", ondelete="RESTRICT"), nullable=False, index=True
    )
    quantity: Mapped[int] = mapped_column(Integer, nullable=False)
    unit_price: Mapped[Decimal] = mapped_column(Numeric(10, 2), nullable=False)

    order: Mapped[Order] = relationship(back_populates="lines", lazy="raise")


class Payment(Model):
    """A payment intent for an order (no real provider: the reference is ours)."""

    __tablename__ = "payments"
    __table_args__ = (
        CheckConstraint(f"status IN ({_in(PaymentStatus)})", name="status_valid"),
        CheckConstraint("amount >= 0", name="amount_not_negative"),
    )

    order_id: Mapped[int] = mapped_column(
        ForeignKey("orders.id", ondelete="CASCADE"), nullable=False, unique=True
    )
    amount: Mapped[Decimal] = mapped_column(Numeric(12, 2), nullable=False)
    status: Mapped[str] = mapped_column(
        String(24), nullable=False, default=PaymentStatus.REQUIRES_PAYMENT.value
    )
    reference: Mapped[str] = mapped_column(String(64), nullable=False, unique=True)

    order: Mapped[Order] = relationship(back_populates="payment", lazy="raise")
