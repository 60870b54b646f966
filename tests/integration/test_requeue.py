"""Orders left pending are sent again: `requeue-pending` and the beat sweep (docs: "Background
work", failures), on the harness's PostgreSQL and Redis.

An order is made "old" by moving its `created_at` back past the sweep's threshold (the order
countdown plus a margin); nothing here waits on the clock.
"""

from __future__ import annotations

import asyncio
import json
import threading
from datetime import UTC, datetime, timedelta

import pytest
from celery.signals import task_postrun
from redis.asyncio import Redis
from sqlalchemy import text, update
from sqlalchemy.ext.asyncio import AsyncSession

from patterns.db import session_scope
from patterns.testing import wait_until_async
from patterns.testing.celery import record_task_events
from reference_app.core.celery_app import (
    REQUEUE_INTERVAL_S,
    REQUEUE_PENDING,
    create_celery_app,
    requeue_after_s,
)
from reference_app.core.config import Settings
from reference_app.models import Order
from reference_app.worker.requeue import requeue_pending_orders, stale_pending_query
from reference_app.worker.tasks import PROCESS_ORDER, process_order
from tests.integration.celery_fixtures import CeleryWorkerFactory
from tests.integration.conftest import AccountFactory, run_kit
from tests.integration.test_tasks import (
    COMPLETED,
    RESULT_TIMEOUT_S,
    PlacedOrder,
    Sessions,
    create_order,
    statuses,
)


async def age(sessions: Sessions, order: PlacedOrder, seconds: float) -> None:
    """Pretend `order` was placed `seconds` ago."""
    async with session_scope(sessions) as session:
        await session.execute(
            update(Order)
            .where(Order.id == order.id)
            .values(created_at=datetime.now(UTC) - timedelta(seconds=seconds))
        )


async def mark(sessions: Sessions, order: PlacedOrder, status: str) -> None:
    async with session_scope(sessions) as session:
        await session.execute(update(Order).where(Order.id == order.id).values(status=status))


async def test_the_sweep_resends_old_pending_orders_once_and_leaves_the_rest(
    committed_db: Sessions, celery_settings: Settings, redis_client: Redis
) -> None:
    old_enough = requeue_after_s(celery_settings) + 1
    stuck = await create_order(committed_db)
    await age(committed_db, stuck, old_enough)
    await create_order(committed_db)  # fresh: its first message may still be waiting
    handled = await create_order(committed_db)
    await age(committed_db, handled, old_enough)
    await mark(committed_db, handled, "processed")
    failed = await create_order(committed_db)
    await age(committed_db, failed, old_enough)
    await mark(committed_db, failed, "failed")

    app = create_celery_app(celery_settings)
    try:
        with record_task_events(app) as events:
            assert requeue_pending_orders(app) == [stuck.id]
    finally:
        app.close()

    [message] = events.published
    assert (message.task, message.args) == (PROCESS_ORDER, [stuck.id])
    assert message.eta is None  # due now: its countdown passed long ago
    assert message.headers.get("expires") is not None  # a copy not run by the next sweep is dropped


async def test_a_resent_order_is_processed_and_charged_once_beside_its_original_message(
    committed_db: Sessions, start_celery_worker: CeleryWorkerFactory
) -> None:
    """The sweep cannot tell a lost message from a slow one: when both run, the row lock and the
    status check make the second a no-op."""
    order = await create_order(committed_db)
    finished: set[str] = set()
    both_finished = threading.Event()

    def on_postrun(task_id: str | None = None, **_: object) -> None:
        finished.add(str(task_id))
        if len(finished) == 2:
            both_finished.set()

    task_postrun.connect(on_postrun, weak=False)
    try:
        with start_celery_worker() as celery:
            assert requeue_pending_orders(celery.app, older_than_s=0) == [order.id]
            original = process_order.delay(order.id)
            assert original.get(timeout=RESULT_TIMEOUT_S) == COMPLETED
            assert await asyncio.to_thread(both_finished.wait, RESULT_TIMEOUT_S)
    finally:
        task_postrun.disconnect(on_postrun)

    assert finished == set(celery.events.published_ids(PROCESS_ORDER))
    assert [c.outcome for c in celery.gateway.calls] == ["charged"]
    assert await statuses(committed_db, order.id) == ("processed", "succeeded")


async def test_beat_runs_the_sweep_and_a_stuck_order_gets_processed(
    committed_db: Sessions, start_celery_worker: CeleryWorkerFactory
) -> None:
    """What a deployment running beat does every minute: the sweep task, on a real worker,
    re-sends the stuck order, and the worker processes it."""
    order = await create_order(committed_db)
    with start_celery_worker() as celery:
        await age(committed_db, order, requeue_after_s(celery.app.settings) + 1)
        [entry] = celery.app.conf.beat_schedule.values()
        assert (entry["task"], entry["schedule"]) == (REQUEUE_PENDING, REQUEUE_INTERVAL_S)
        assert REQUEUE_PENDING in celery.app.tasks

        celery.app.send_task(entry["task"], **entry["options"])

        async def processed() -> bool:
            return await statuses(committed_db, order.id) == ("processed", "succeeded")

        await wait_until_async(processed, "the stuck order to be processed")
    assert [c.outcome for c in celery.gateway.calls] == ["charged"]


@pytest.mark.slow
async def test_the_command_resends_the_oldest_orders_up_to_its_limit(
    committed_db: Sessions, database_url: str, redis_url: str, redis_client: Redis
) -> None:
    first = await create_order(committed_db)
    second = await create_order(committed_db)
    for order in (first, second):
        await age(committed_db, order, 60)
    env = {"KIT_DATABASE_URL": database_url, "KIT_REDIS_URL": redis_url}

    default = await run_kit("requeue-pending", env=env)
    assert default.returncode == 0, default.stderr
    assert "re-sent process_order for 0 pending orders" in default.stdout  # younger than 420 s

    limited = await run_kit("requeue-pending", "--older-than", "30", "--limit", "1", env=env)
    assert limited.returncode == 0, limited.stderr
    assert "re-sent process_order for 1 pending orders" in limited.stdout
    [raw] = await redis_client.lrange("celery", 0, -1)
    headers = json.loads(raw)["headers"]
    assert (headers["task"], headers["argsrepr"]) == (PROCESS_ORDER, f"({first.id},)")


async def test_the_sweep_reads_the_pending_index_not_the_whole_table(
    db_session: AsyncSession, make_account: AccountFactory
) -> None:
    """Every minute, on a table that only grows: the partial index holds the pending orders."""
    owner = await make_account()
    await db_session.execute(
        text(
            "INSERT INTO orders (user_id, status, total, created_at, updated_at) "
            "SELECT :uid, CASE WHEN n % 1000 = 0 THEN 'pending' ELSE 'processed' END, 1, "
            "now() - interval '1 hour', now() FROM generate_series(1, 20000) AS n"
        ),
        {"uid": owner.user.id},
    )
    await db_session.execute(text("ANALYZE orders"))
    stmt = stale_pending_query(datetime.now(UTC), 1000)
    compiled = stmt.compile(
        dialect=db_session.get_bind().dialect, compile_kwargs={"literal_binds": True}
    )
    plan = "\n".join(r[0] for r in await db_session.execute(text(f"EXPLAIN {compiled}")))
    assert "ix_orders_pending" in plan, plan
    assert "Seq Scan on orders" not in plan, plan
