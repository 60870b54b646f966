"""Exercise 11's check: a real Celery publish to the harness's Redis, watched by Celery's own
`before_task_publish` signal, which looks for the order from another database connection at the
moment the message leaves."""

from __future__ import annotations

from collections.abc import Iterator
from types import ModuleType
from typing import Any

import psycopg
import pytest
from celery import Celery, Task
from celery.signals import before_task_publish
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from learn.models import Product


@pytest.fixture
def confirm(redis_url: str) -> Iterator[Task[Any, Any]]:
    app = Celery("learn-exercise", broker=redis_url, set_as_current=False)
    app.conf.broker_connection_retry_on_startup = False

    @app.task(name="learn.confirm_order")
    def confirm_order(order_id: int) -> None:  # the check only publishes; no worker runs
        raise AssertionError("not run in this check")

    yield confirm_order
    app.close()


@pytest.mark.integration
async def test_the_task_leaves_after_the_commit(
    learner: ModuleType,
    committed_db: async_sessionmaker[AsyncSession],
    redis_client: Redis,
    database_url: str,
    confirm: Task[Any, Any],
) -> None:
    async with committed_db() as session:
        product = Product(name="lamp", category="tools", price_cents=1000, stock=5)
        session.add(product)
        await session.commit()
    seen: list[tuple[Any, bool]] = []

    def on_publish(sender: str | None = None, body: Any = None, **_: Any) -> None:
        if sender != "learn.confirm_order":
            return
        order_id = body[0][0]
        with psycopg.connect(database_url) as conn:  # another connection, like a worker's
            row = conn.execute("SELECT 1 FROM learn_orders WHERE id = %s", (order_id,))
            seen.append((order_id, row.fetchone() is not None))

    before_task_publish.connect(on_publish, weak=False)
    try:
        async with committed_db() as session:
            order_id = await learner.place_order(session, product.id, 2, confirm)
    finally:
        before_task_publish.disconnect(on_publish)
    assert seen, "place_order sent no task: call confirm.delay(order_id) after the commit"
    assert len(seen) == 1, f"place_order sent {len(seen)} tasks; one confirmation per order"
    sent_for, visible = seen[0]
    assert sent_for == order_id, f"the task was sent for order {sent_for}, not {order_id}"
    assert visible, (
        f"the task for order {order_id} was sent while the order was not committed yet: a "
        "worker picking it up at once finds no order. Send it after session.commit()"
    )
    assert await redis_client.llen("celery") == 1, "the message is not on the broker's queue"
