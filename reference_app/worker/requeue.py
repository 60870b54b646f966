"""Re-sending `process_order` for orders left pending (docs: "Background work", failures).

An order can stay `pending` with no message left to process it: its publish failed after the
commit (the broker was down), a Redis broker restarted without its data, a worker died holding
the order's countdown message (it comes back only after the visibility timeout), or its retries
ran out. `requeue_pending_orders` finds pending orders older than the countdown plus a margin and
sends `process_order` for each again. A duplicate of a message that does still exist is harmless:
the task locks the order row and does nothing once the order is no longer pending.

Two ways to run it: `python -m reference_app requeue-pending` by hand (or from cron), and the
beat entry (`celery_app.beat_schedule`; `python -m reference_app worker --beat`, or `beat`), which
runs `requeue_pending_orders_task` every `REQUEUE_INTERVAL_S`, so a deployment heals itself.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from celery import Task, shared_task
from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from patterns.observability.logging import get_logger
from reference_app.core.celery_app import (
    REQUEUE_INTERVAL_S,
    REQUEUE_PENDING,
    KitCelery,
    requeue_after_s,
)
from reference_app.models.order import Order, OrderStatus
from reference_app.worker.tasks import PROCESS_ORDER

logger = get_logger("reference_app.worker")

DEFAULT_LIMIT = 1000


def stale_pending_order_ids(
    session: Session, *, older_than_s: float, limit: int, now: datetime | None = None
) -> list[int]:
    """Ids of pending orders created more than `older_than_s` ago, oldest first."""
    cutoff = (now or datetime.now(UTC)) - timedelta(seconds=older_than_s)
    return list(session.scalars(stale_pending_query(cutoff, limit)))


def stale_pending_query(cutoff: datetime, limit: int) -> Select[int]:
    """The sweep's statement: a walk of the partial index `ix_orders_pending`."""
    return (
        select(Order.id)
        .where(Order.status == OrderStatus.PENDING, Order.created_at < cutoff)
        .order_by(Order.id)
        .limit(limit)
    )


def requeue_pending_orders(
    app: KitCelery,
    *,
    older_than_s: float | None = None,
    limit: int = DEFAULT_LIMIT,
    expires_s: float | None = REQUEUE_INTERVAL_S,
) -> list[int]:
    """Send `process_order` now for each stale pending order; return their ids.

    `older_than_s` defaults to the order countdown plus a margin (`requeue_after_s`), so an order
    whose first message is simply still waiting is left alone. `expires_s`: a re-sent message
    not started by then is dropped by the worker, so while workers are down the sweeps do not
    pile up one runnable copy per order per run (the next sweep sends a fresh one). A broker
    error propagates: nothing is lost, the next run finds the same orders.
    """
    threshold = requeue_after_s(app.settings) if older_than_s is None else older_than_s
    with Session(app.sync_engine()) as session:
        ids = stale_pending_order_ids(session, older_than_s=threshold, limit=limit)
    options: dict[str, Any] = {"ignore_result": True}
    if expires_s is not None:
        options["expires"] = expires_s
    with app.producer_or_acquire() as producer:
        for order_id in ids:
            app.send_task(PROCESS_ORDER, args=(order_id,), producer=producer, **options)
    if ids:
        logger.warning(
            "re-sent process_order for stale pending orders",
            count=len(ids),
            older_than_s=threshold,
            first_order_id=ids[0],
            last_order_id=ids[-1],
        )
    return ids


@shared_task(bind=True, name=REQUEUE_PENDING, ignore_result=True)
def requeue_pending_orders_task(self: Task[..., int]) -> int:
    """The periodic sweep (beat): how many orders it re-sent."""
    app = self.app
    if not isinstance(app, KitCelery):
        raise TypeError("requeue_pending_orders needs an app from create_celery_app()")
    return len(requeue_pending_orders(app))
