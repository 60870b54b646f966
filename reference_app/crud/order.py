"""Placing orders (guide: "Order Processing Flow"), all or nothing.

The guide checks availability for every line, then creates the order, then decrements: two
requests can both pass the check before either decrements (it oversells), and it opens
`with db.begin()` on a session that has already begun (SQLAlchemy raises). Here the request's
transaction (owned by the session dependency) does, in order:

1. serialise retries of one `Idempotency-Key` (a transaction-scoped advisory lock) and replay
   the first order if it exists;
2. decrement each line's stock with one conditional UPDATE (`… WHERE quantity >= :q`) that
   also returns the item's price, in item id order so concurrent orders lock rows in the same
   order and cannot deadlock;
3. create the order, its lines (unit prices captured now) and the payment intent;
4. after the commit, and only then, send `process_order` with the configured countdown.

Any failure raises, the dependency rolls back, and nothing (stock included) has changed.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable
from decimal import Decimal

from sqlalchemy import select, text, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload
from sqlalchemy.orm.interfaces import ORMOption

from patterns.db import utcnow
from patterns.errors import BusinessRuleError, NotFoundError, ValidationFailedError
from patterns.filtering import check_column_value
from reference_app.crud import activity
from reference_app.models.item import Inventory, Item
from reference_app.models.order import Order, OrderItem, Payment
from reference_app.schemas.order import OrderCreate

EnqueueFn = Callable[[AsyncSession, int], object]


def request_fingerprint(order_in: OrderCreate) -> str:
    """The body's identity for idempotent retries: the same lines in another order are the same
    order (they are placed in item-id order anyway)."""
    lines = sorted(order_in.items, key=lambda line: line.id)
    return hashlib.sha256(OrderCreate(items=lines).model_dump_json().encode()).hexdigest()


def with_details() -> list[ORMOption]:
    """Eager loads for an order response: lines and payment in one extra query each."""
    return [selectinload(Order.lines), selectinload(Order.payment)]


async def get_with_details(session: AsyncSession, order_id: int) -> Order | None:
    return await session.scalar(select(Order).where(Order.id == order_id).options(*with_details()))


async def _replay(session: AsyncSession, user_id: int, key: str, fingerprint: str) -> Order | None:
    if session.get_bind().dialect.name == "postgresql":
        # Two retries with one key wait for each other here instead of racing to insert.
        await session.execute(
            text("SELECT pg_advisory_xact_lock(:uid, hashtext(:key))"), {"uid": user_id, "key": key}
        )
    existing = await session.scalar(
        select(Order)
        .where(Order.user_id == user_id, Order.idempotency_key == key)
        .options(*with_details())
    )
    if existing is not None and existing.request_hash != fingerprint:
        raise ValidationFailedError(
            "This Idempotency-Key was used with a different request body.",
            code="idempotency_key_reused",
        )
    return existing


async def _reserve(session: AsyncSession, item_id: int, quantity: int) -> Decimal | None:
    """Take `quantity` off the item's stock if that much is left, and return the item's price
    (read in the same statement: one round trip per line); None when nothing was taken."""
    # Correlated to the updated row. SQLite renders the subquery's columns unqualified
    # ("WHERE id = item_id"), which resolves right only because `items` has no `item_id`
    # column; tests/unit/test_order_sqlite.py checks the prices there.
    price = select(Item.price).where(Item.id == Inventory.item_id).scalar_subquery()
    result: Decimal | None = await session.scalar(
        update(Inventory)
        .where(Inventory.item_id == item_id, Inventory.quantity >= quantity)
        .values(quantity=Inventory.quantity - quantity, updated_at=utcnow())
        .returning(price)
    )
    return result


async def _refusal(session: AsyncSession, ids: list[int], item_id: int, quantity: int) -> Exception:
    """Why a line could not be reserved: items that do not exist (404, all of them listed),
    else not enough stock of this one (409). The transaction is rolled back either way."""
    found = set(await session.scalars(select(Item.id).where(Item.id.in_(ids))))
    missing = [i for i in ids if i not in found]
    if missing:
        return NotFoundError(
            f"Item {missing[0]} does not exist.",
            code="item_not_found",
            details=[{"item_id": i} for i in missing],
        )
    available = await session.scalar(select(Inventory.quantity).where(Inventory.item_id == item_id))
    return BusinessRuleError(
        f"Insufficient stock for item {item_id}: {quantity} requested, {available or 0} available.",
        code="insufficient_stock",
        details=[{"item_id": item_id, "requested": quantity, "available": available or 0}],
    )


async def create_order(
    session: AsyncSession,
    *,
    user_id: int,
    order_in: OrderCreate,
    idempotency_key: str | None,
    enqueue: EnqueueFn,
) -> tuple[Order, bool]:
    """Place an order; returns (order, created). `created` is False for an idempotent replay."""
    fingerprint = request_fingerprint(order_in)
    if idempotency_key is not None:
        existing = await _replay(session, user_id, idempotency_key, fingerprint)
        if existing is not None:
            return existing, False

    lines = sorted(order_in.items, key=lambda line: line.id)
    ids = [line.id for line in lines]
    prices: dict[int, Decimal] = {}
    for line in lines:
        price = await _reserve(session, line.id, line.quantity)
        if price is None:
            raise await _refusal(session, ids, line.id, line.quantity)
        prices[line.id] = price

    total = sum((prices[line.id] * line.quantity for line in lines), Decimal("0"))
    try:
        check_column_value(Order.total, total)
    except ValueError as exc:  # each line fits; their sum may not fit the total's column
        raise ValidationFailedError(
            f"The order's total {exc}; split it into smaller orders.",
            code="order_total_too_large",
        ) from None
    order = Order(
        user_id=user_id,
        total=total,
        idempotency_key=idempotency_key,
        request_hash=fingerprint,
        lines=[
            OrderItem(item_id=line.id, quantity=line.quantity, unit_price=prices[line.id])
            for line in lines
        ],
        payment=Payment(amount=total, reference=f"pay_{uuid.uuid4().hex}"),
    )
    session.add(order)
    activity.record(session, user_id, "order_created", f"order of {len(lines)} item(s)")
    await session.flush()
    enqueue(session, order.id)
    return order, True
