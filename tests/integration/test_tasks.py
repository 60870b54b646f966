"""`process_order` on a real worker, the harness's Redis broker and PostgreSQL (guide: "Testing
Background Tasks").

Orders are committed (`committed_db`): the task runs on the worker's thread with its own
connections. Nothing here sleeps: a test waits on the task's result, or on an event the recording
payment gateway sets, or on PostgreSQL reporting a lock wait.
"""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass
from decimal import Decimal

import pytest
from celery import Celery
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from patterns.db import session_scope
from patterns.observability.celery import REQUEST_ID_HEADER
from patterns.observability.request_id import set_request_id
from patterns.tasks import RetryPolicy, send_after_commit
from patterns.testing import wait_until_async
from reference_app.core.celery_app import TRANSIENT_ERRORS
from reference_app.core.payments import (
    PaymentDeclinedError,
    RecordingPaymentGateway,
    TransientPaymentError,
)
from reference_app.models import Order, Payment
from reference_app.worker.tasks import PROCESS_ORDER, process_order
from tests.factories import ItemFactory, OrderFactory, UserFactory
from tests.integration.celery_fixtures import (
    TEST_MAX_RETRIES,
    CeleryWorker,
    CeleryWorkerFactory,
)

Sessions = async_sessionmaker[AsyncSession]
COMPLETED = {"status": "completed"}
RESULT_TIMEOUT_S = 10


@dataclass(frozen=True)
class PlacedOrder:
    id: int
    reference: str
    total: Decimal


async def add_order(session: AsyncSession) -> PlacedOrder:
    """A pending order for 2 × 9.50 with its line and payment intent, flushed in `session`."""
    user = await UserFactory.create_async(session)
    item = await ItemFactory.create_async(session, owner=user, price=Decimal("9.50"), stock=8)
    order = await OrderFactory.create_async(session, user=user, basket=[(item, 2)])
    assert order.payment is not None
    reference, total = order.payment.reference, order.total
    return PlacedOrder(order.id, reference, total)


async def create_order(sessions: Sessions) -> PlacedOrder:
    async with session_scope(sessions) as session:
        return await add_order(session)


@pytest.fixture
async def order(committed_db: Sessions) -> PlacedOrder:
    """A committed pending order (`add_order`)."""
    return await create_order(committed_db)


async def statuses(sessions: Sessions, order_id: int) -> tuple[str, str]:
    """(order status, payment status) as committed."""
    async with sessions() as session:
        row = (
            await session.execute(
                select(Order.status, Payment.status)
                .join(Payment, Payment.order_id == Order.id)
                .where(Order.id == order_id)
            )
        ).one()
        return row[0], row[1]


def send_process_order(session: AsyncSession, app: Celery, order_id: int, countdown: float) -> str:
    """Publish `process_order` after commit, as the order service does."""
    return send_after_commit(
        session, app.signature(PROCESS_ORDER), args=(order_id,), countdown=countdown
    )


def top_of_window_policy() -> RetryPolicy:
    """The production policy with its random draw pinned to the top of each window."""
    return RetryPolicy(
        base_s=0.02,
        cap_s=0.5,
        max_retries=TEST_MAX_RETRIES,
        transient=TRANSIENT_ERRORS,
        draw=lambda: 1.0,
    )


# --- the guide's test ------------------------------------------------------------------------


async def test_process_order_completes_and_leaves_the_order_processed(
    order: PlacedOrder, committed_db: Sessions, celery_worker: CeleryWorker
) -> None:

    result = process_order.delay(order.id)
    assert result.id is not None

    assert result.get(timeout=RESULT_TIMEOUT_S) == COMPLETED
    assert await statuses(committed_db, order.id) == ("processed", "succeeded")
    [call] = celery_worker.gateway.calls
    assert (call.idempotency_key, call.amount, call.outcome) == (
        order.reference,
        order.total,
        "charged",
    )


# --- idempotency -----------------------------------------------------------------------------


async def test_a_duplicate_delivery_processes_the_order_once(
    order: PlacedOrder, committed_db: Sessions, celery_worker: CeleryWorker
) -> None:

    first = process_order.delay(order.id)
    second = process_order.delay(order.id)

    assert first.get(timeout=RESULT_TIMEOUT_S) == COMPLETED
    assert second.get(timeout=RESULT_TIMEOUT_S) == COMPLETED
    assert [c.outcome for c in celery_worker.gateway.calls] == ["charged"]
    assert await statuses(committed_db, order.id) == ("processed", "succeeded")


async def test_concurrent_runs_of_one_order_capture_the_payment_once(
    order: PlacedOrder, committed_db: Sessions, start_celery_worker: CeleryWorkerFactory
) -> None:
    """The second run waits on the order's row lock while the first is inside the capture."""
    release = threading.Event()
    gateway = RecordingPaymentGateway(hold=release)

    with start_celery_worker(gateway=gateway, concurrency=2):
        first = process_order.delay(order.id)
        assert await asyncio.to_thread(gateway.entered.wait, RESULT_TIMEOUT_S)
        second = process_order.delay(order.id)

        async def second_run_waits_on_the_lock() -> bool:
            async with committed_db() as session:
                waiting = await session.scalar(
                    text(
                        "SELECT count(*) FROM pg_stat_activity "
                        "WHERE datname = current_database() AND wait_event_type = 'Lock'"
                    )
                )
                return bool(waiting == 1)

        await wait_until_async(
            second_run_waits_on_the_lock, "the second run to wait on the row lock"
        )
        release.set()

        assert first.get(timeout=RESULT_TIMEOUT_S) == COMPLETED
        assert second.get(timeout=RESULT_TIMEOUT_S) == COMPLETED

    assert [c.outcome for c in gateway.calls] == ["charged"]
    assert await statuses(committed_db, order.id) == ("processed", "succeeded")


async def test_a_connection_lost_mid_transaction_leaves_the_order_pending_for_the_retry(
    order: PlacedOrder, committed_db: Sessions, start_celery_worker: CeleryWorkerFactory
) -> None:
    """The worker's connection dies after the capture, before the commit: nothing is committed,
    the retry finds the order pending and captures again with the same idempotency key, and the
    provider replays the first charge instead of charging twice."""
    release = threading.Event()
    gateway = RecordingPaymentGateway(hold=release)

    with start_celery_worker(gateway=gateway, retry_policy=top_of_window_policy()) as celery:
        result = process_order.delay(order.id)
        assert await asyncio.to_thread(gateway.entered.wait, RESULT_TIMEOUT_S)
        async with committed_db() as session:
            killed = await session.scalar(
                text(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid() "
                    "AND state = 'idle in transaction'"
                )
            )
        assert killed == 1
        assert await statuses(committed_db, order.id) == ("pending", "requires_payment")
        release.set()

        assert result.get(timeout=RESULT_TIMEOUT_S) == COMPLETED
        assert len(celery.events.retry_countdowns(result.id)) == 1

    assert [c.outcome for c in gateway.calls] == ["charged", "replayed"]
    assert gateway.charges == 1
    assert await statuses(committed_db, order.id) == ("processed", "succeeded")


# --- failures --------------------------------------------------------------------------------


async def test_a_transient_failure_is_retried_with_growing_delays_and_processed_once(
    order: PlacedOrder, committed_db: Sessions, start_celery_worker: CeleryWorkerFactory
) -> None:
    gateway = RecordingPaymentGateway(
        [TransientPaymentError("provider timeout"), TransientPaymentError("provider 503")]
    )
    policy = top_of_window_policy()

    with start_celery_worker(gateway=gateway, retry_policy=policy) as celery:
        result = process_order.delay(order.id)
        assert result.get(timeout=RESULT_TIMEOUT_S) == COMPLETED

    countdowns = celery.events.retry_countdowns(result.id)
    assert countdowns == [policy.ceiling(0), policy.ceiling(1)] == [0.02, 0.04]
    assert [c.outcome for c in gateway.calls] == [
        "TransientPaymentError",
        "TransientPaymentError",
        "charged",
    ]
    assert await statuses(committed_db, order.id) == ("processed", "succeeded")


async def test_jittered_retry_delays_stay_inside_their_growing_windows(
    order: PlacedOrder, committed_db: Sessions, start_celery_worker: CeleryWorkerFactory
) -> None:
    gateway = RecordingPaymentGateway([TransientPaymentError("timeout")] * 3)

    with start_celery_worker(gateway=gateway) as celery:  # the settings' policy, random draws
        result = process_order.delay(order.id)
        assert result.get(timeout=RESULT_TIMEOUT_S) == COMPLETED

    policy = celery.app.retry_policy
    countdowns = celery.events.retry_countdowns(result.id)
    assert len(countdowns) == 3
    for retries, countdown in enumerate(countdowns):
        assert isinstance(countdown, float)
        assert 0 <= countdown <= policy.ceiling(retries)
    assert policy.ceiling(0) < policy.ceiling(1) < policy.ceiling(2)


async def test_retries_stop_at_the_limit_and_leave_the_order_pending(
    order: PlacedOrder, committed_db: Sessions, start_celery_worker: CeleryWorkerFactory
) -> None:
    """Out of retries: the task fails, the order stays pending (nothing was committed), so it
    can be processed again later."""
    gateway = RecordingPaymentGateway([TransientPaymentError("down")] * (TEST_MAX_RETRIES + 1))

    with start_celery_worker(gateway=gateway) as celery:
        result = process_order.delay(order.id)
        with pytest.raises(TransientPaymentError):
            result.get(timeout=RESULT_TIMEOUT_S)

    assert len(celery.events.retry_countdowns(result.id)) == TEST_MAX_RETRIES
    assert len(gateway.calls) == TEST_MAX_RETRIES + 1
    assert gateway.charges == 0
    assert await statuses(committed_db, order.id) == ("pending", "requires_payment")


async def test_a_declined_payment_fails_the_order_after_one_attempt(
    order: PlacedOrder, committed_db: Sessions, start_celery_worker: CeleryWorkerFactory
) -> None:
    gateway = RecordingPaymentGateway([PaymentDeclinedError("card declined")])

    with start_celery_worker(gateway=gateway) as celery:
        result = process_order.delay(order.id)
        with pytest.raises(PaymentDeclinedError):
            result.get(timeout=RESULT_TIMEOUT_S)
        # A redelivery of the same message finds the order already handled.
        assert process_order.delay(order.id).get(timeout=RESULT_TIMEOUT_S) == COMPLETED

    assert celery.events.retry_countdowns(result.id) == []
    assert [c.outcome for c in gateway.calls] == ["PaymentDeclinedError"]
    assert await statuses(committed_db, order.id) == ("failed", "failed")


async def test_an_order_that_does_not_exist_fails_without_retrying(
    celery_worker: CeleryWorker,
) -> None:
    result = process_order.delay(2**31 - 1)
    with pytest.raises(LookupError):
        result.get(timeout=RESULT_TIMEOUT_S)
    assert celery_worker.events.retry_countdowns(result.id) == []
    assert celery_worker.gateway.calls == []


async def test_an_order_id_outside_the_column_range_is_refused_before_sql(
    celery_worker: CeleryWorker,
) -> None:
    for bad_id in (0, -1, 2**31, "1", True):
        result = process_order.delay(bad_id)
        with pytest.raises(ValueError, match="order_id"):
            result.get(timeout=RESULT_TIMEOUT_S)
        assert celery_worker.events.retry_countdowns(result.id) == []


# --- sending after commit --------------------------------------------------------------------


async def test_no_task_is_sent_for_a_transaction_that_rolls_back(
    committed_db: Sessions, celery_worker: CeleryWorker
) -> None:
    with pytest.raises(RuntimeError, match="payment intent failed"):
        async with session_scope(committed_db) as session:
            order = await add_order(session)
            send_process_order(session, celery_worker.app, order.id, countdown=0)
            raise RuntimeError("payment intent failed")

    assert celery_worker.events.published == []
    async with committed_db() as session:
        assert await session.scalar(select(func.count()).select_from(Order)) == 0


async def test_a_task_sent_after_commit_finds_its_order(
    committed_db: Sessions, celery_worker: CeleryWorker
) -> None:
    set_request_id("req-order-1")  # as inside a request
    try:
        async with session_scope(committed_db) as session:
            order = await add_order(session)
            task_id = send_process_order(session, celery_worker.app, order.id, countdown=0.05)
            assert celery_worker.events.published == []  # not before the commit
    finally:
        set_request_id(None)

    assert celery_worker.events.published_ids(PROCESS_ORDER) == [task_id]
    [message] = celery_worker.events.published
    assert message.args == [order.id]
    assert message.eta is not None  # the countdown travels as an ETA
    # Published from a worker thread, in a copy of the caller's context: the id came along.
    assert message.headers.get(REQUEST_ID_HEADER) == "req-order-1"
    result = celery_worker.app.AsyncResult(task_id)
    assert result.get(timeout=RESULT_TIMEOUT_S) == COMPLETED
    assert await statuses(committed_db, order.id) == ("processed", "succeeded")
