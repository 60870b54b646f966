"""The order worker's task, `process_order` (guide: "Celery Tasks", "Order Processing Flow").

One transaction per run: lock the order row, and only if it is still pending capture its payment
and mark both done. So a duplicate delivery, a concurrent run or a redelivery after a crash finds
the order already handled (or waits for the lock, then finds it handled) and does nothing again.
A worker that dies mid-run leaves no trace in the database (the transaction never committed): the
order is still pending when the broker redelivers the message. The capture carries the payment's
`reference` as its idempotency key, so even a capture that succeeded before such a crash is not
charged twice.

Failures: transient ones (the database, a `TransientPaymentError`) are retried with the app's
`RetryPolicy`; a declined payment is final: the order and the payment are marked failed, committed,
and the task fails without a retry.

Registered with `shared_task`, so every app built by `create_celery_app` has it, and
`process_order.delay(...)` goes through the process's current app (the guide's test calls it so).
"""

from __future__ import annotations

import logging

from celery import Task, shared_task
from sqlalchemy import select
from sqlalchemy.orm import Session

from patterns.observability.logging import get_logger
from patterns.tasks import ReliableTask
from patterns.validation import INT32_MAX
from reference_app.core.celery_app import KitCelery
from reference_app.core.payments import PaymentDeclinedError
from reference_app.models.order import Order, OrderStatus, Payment, PaymentStatus

# structlog: the outcome fields are rendered as keys (stdlib `extra=` would be dropped).
logger = get_logger("reference_app.worker")

PROCESS_ORDER = "reference_app.worker.tasks.process_order"


class OrderNotFoundError(LookupError):
    """No such order: nothing to process, and retrying will not make it appear."""


class OrderNotPayableError(RuntimeError):
    """The order has no payment intent; it is marked failed."""


def completed() -> dict[str, str]:
    return {"status": "completed"}


def _app(task: Task[..., object]) -> KitCelery:
    app = task.app
    if not isinstance(app, KitCelery):
        raise TypeError("process_order needs an app from create_celery_app()")
    return app


@shared_task(bind=True, base=ReliableTask, name=PROCESS_ORDER)
def process_order(self: ReliableTask, order_id: int) -> dict[str, str]:
    """Capture the order's payment and mark it processed; `{"status": "completed"}` when done."""
    # The id comes off the broker: anything but an int the column can hold is refused before SQL.
    if (
        isinstance(order_id, bool)
        or not isinstance(order_id, int)
        or not 1 <= order_id <= INT32_MAX
    ):
        raise ValueError(f"order_id must be an integer in 1..{INT32_MAX}")
    app = _app(self)
    attempt = self.request.retries + 1
    try:
        return _process(app, order_id, attempt)
    except Exception as exc:
        policy = app.retry_policy
        if policy.is_transient(exc):
            level = logging.WARNING if self.request.retries < policy.max_retries else logging.ERROR
            logger.log(
                level,
                "order processing failed transiently",
                order_id=order_id,
                attempt=attempt,
                max_retries=policy.max_retries,
                error=type(exc).__name__,
                gives_up=self.request.retries >= policy.max_retries,
            )
        self.retry_transient(exc, policy)


def _process(app: KitCelery, order_id: int, attempt: int) -> dict[str, str]:
    declined: PaymentDeclinedError | None = None
    charge: str | None = None
    with Session(app.sync_engine(), expire_on_commit=False) as session, session.begin():
        # The row lock serialises every run for this order: a second delivery waits here until
        # the first commits, then sees a status other than pending.
        order = session.scalars(
            select(Order).where(Order.id == order_id).with_for_update()
        ).one_or_none()
        if order is None:
            raise OrderNotFoundError(f"order {order_id} does not exist")
        if order.status != OrderStatus.PENDING:
            logger.info(
                "order already handled",
                order_id=order_id,
                order_status=order.status,
                attempt=attempt,
            )
            return completed()
        payment = session.scalars(
            select(Payment).where(Payment.order_id == order_id).with_for_update()
        ).one_or_none()
        if payment is None:
            order.status = OrderStatus.FAILED
        else:
            try:
                charge = app.payment_gateway.capture(
                    idempotency_key=payment.reference, amount=payment.amount
                )
            except PaymentDeclinedError as exc:
                order.status = OrderStatus.FAILED
                payment.status = PaymentStatus.FAILED
                declined = exc
            else:
                payment.status = PaymentStatus.SUCCEEDED
                order.status = OrderStatus.PROCESSED
    # Committed: the outcome is durable before it is reported.
    if payment is None:
        logger.error("order failed: no payment intent", order_id=order_id)
        raise OrderNotPayableError(f"order {order_id} has no payment intent")
    if declined is not None:
        logger.warning(
            "order failed: payment declined",
            order_id=order_id,
            payment_reference=payment.reference,
            attempt=attempt,
        )
        raise declined
    logger.info(
        "order processed",
        order_id=order_id,
        payment_reference=payment.reference,
        charge_id=charge,
        attempt=attempt,
    )
    return completed()
