"""Placing an order (guide: "Order Processing Flow"), all or nothing.

The guide checks availability for every line, then creates the order, then decrements: two
requests can both pass the check before either decrements (it oversells), and it opens
`with db.begin()` on a session that has already begun (SQLAlchemy raises), and it sends the
Celery task inside the transaction, where a worker can pick it up before the commit. Here the
request's transaction (owned by the session dependency) holds every step of `place_order`,
the task included: it is written to the outbox with the order, and the relay publishes it once
the transaction has committed (docs: "Background work"), so a committed order always gets its
task and a rolled-back one never does.
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import timedelta
from decimal import Decimal

from sqlalchemy.ext.asyncio import AsyncSession

from patterns.db import on_commit, utcnow
from patterns.errors import BusinessRuleError, NotFoundError, ValidationFailedError
from patterns.filtering import check_column_value
from reference_app.core.cache import user_tag
from reference_app.core.metrics import ORDERS_CREATED
from reference_app.core.state import AppState
from reference_app.crud.activity import activities
from reference_app.crud.item import inventories, items
from reference_app.crud.order import orders
from reference_app.models.order import Order, OrderItem, Payment
from reference_app.schemas.order import OrderCreate, OrderLineIn
from reference_app.worker.tasks import PROCESS_ORDER


async def place_order(
    session: AsyncSession,
    state: AppState,
    user_id: int,
    order_in: OrderCreate,
    *,
    idempotency_key: str | None,
) -> tuple[Order, bool]:
    """Place an order; returns (order, created). `created` is False for an idempotent replay,
    which returns the first order placed with the key. Any failure raises, the session
    dependency rolls back, and nothing (stock included) has changed."""
    # 1. A retry with an Idempotency-Key already used: the first order, if the body matches.
    fingerprint = request_fingerprint(order_in)
    if idempotency_key is not None:
        existing = await _replay(session, user_id, idempotency_key, fingerprint)
        if existing is not None:
            return existing, False

    # 2. Reserve every line's stock at once; the prices come back with the reservation. A line
    #    not reserved (no such item, or not enough left) refuses the whole order.
    lines = sorted(order_in.items, key=lambda line: line.id)
    prices = await inventories.reserve_all(session, [(line.id, line.quantity) for line in lines])
    refused = next((line for line in lines if line.id not in prices), None)
    if refused is not None:
        raise await _refusal(session, lines, refused)

    # 3. The order, its lines (unit prices captured now), the payment intent, the user's
    #    activity and the outbox row for `process_order` (due after the configured countdown):
    #    written together, so the task exists if and only if the order commits.
    total = _checked_total(sum((prices[i.id] * i.quantity for i in lines), Decimal("0")))
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
    await orders.insert_placed(
        session,
        order,
        activity=activities.new(user_id, "order_created", f"order of {len(lines)} item(s)"),
        task=PROCESS_ORDER,
        not_before=utcnow() + timedelta(seconds=state.settings.order_processing_delay_s),
    )

    # 4. After the commit, and only then: count it and drop the user's profile (a new
    #    activity). The relay finds the outbox row on its next poll; an embedded relay, in this
    #    process, is woken now.
    on_commit(session, ORDERS_CREATED.inc)
    state.redis.cache.invalidate_on_commit(session, tags=[user_tag(user_id)])
    if state.outbox_relay is not None:
        on_commit(session, state.outbox_relay.wake)
    return order, True


def request_fingerprint(order_in: OrderCreate) -> str:
    """The body's identity for idempotent retries: the same lines in another order are the same
    order (they are placed in item-id order anyway)."""
    lines = sorted(order_in.items, key=lambda line: line.id)
    return hashlib.sha256(OrderCreate(items=lines).model_dump_json().encode()).hexdigest()


async def _replay(session: AsyncSession, user_id: int, key: str, fingerprint: str) -> Order | None:
    """The order first placed with this key, if any; the key with another body is a 422.
    Retries of one key wait for each other (`lock_idempotency_key`) instead of racing."""
    await orders.lock_idempotency_key(session, user_id, key)
    existing = await orders.get_by_idempotency_key(session, user_id, key)
    if existing is not None and existing.request_hash != fingerprint:
        raise ValidationFailedError(
            "This Idempotency-Key was used with a different request body.",
            code="idempotency_key_reused",
        )
    return existing


def _checked_total(total: Decimal) -> Decimal:
    """Each line fits its columns; their sum may not fit the total's."""
    try:
        check_column_value(Order.total, total)
    except ValueError as exc:
        raise ValidationFailedError(
            f"The order's total {exc}; split it into smaller orders.",
            code="order_total_too_large",
        ) from None
    return total


async def _refusal(
    session: AsyncSession, lines: list[OrderLineIn], refused: OrderLineIn
) -> Exception:
    """Why a line could not be reserved: items that do not exist (404, all of them listed),
    else not enough stock of this one (409)."""
    ids = [line.id for line in lines]
    found = await items.existing_ids(session, ids)
    missing = [i for i in ids if i not in found]
    if missing:
        return NotFoundError(
            f"Item {missing[0]} does not exist.",
            code="item_not_found",
            details=[{"item_id": i} for i in missing],
        )
    available = await inventories.quantity_of(session, refused.id)
    return BusinessRuleError(
        f"Insufficient stock for item {refused.id}: {refused.quantity} requested, "
        f"{available} available.",
        code="insufficient_stock",
        details=[{"item_id": refused.id, "requested": refused.quantity, "available": available}],
    )
