"""The embedded default runs Celery tasks on a worker thread inside the API process."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import fakeredis
from fastapi import FastAPI
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from patterns.db import session_scope
from patterns.tasks import send_after_commit
from patterns.testing import wait_until_async
from patterns.testing.celery import record_task_events
from reference_app.core import migrations
from reference_app.core.config import Settings
from reference_app.core.state import app_state
from reference_app.main import create_app
from reference_app.models import Order, OutboxMessage
from reference_app.schemas.order import OrderCreate
from reference_app.services.orders import place_order
from reference_app.worker.tasks import PROCESS_ORDER
from tests.factories import ItemFactory, OrderFactory, UserFactory


async def _add_order(session: AsyncSession) -> int:
    user = await UserFactory.create_async(session)
    await ItemFactory.create_async(session, owner=user, price=Decimal("5.00"))
    order = await OrderFactory.create_async(session, user=user, total=Decimal("5.00"))
    return order.id


async def _status(app: FastAPI, order_id: int) -> str | None:
    async with app.state.kit.database.sessionmaker() as session:
        order = await session.get(Order, order_id)
        return order.status if order else None


async def test_an_order_enqueued_after_commit_is_processed_in_process(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/kit.db"
    migrations.upgrade(url)
    settings = Settings(env="test", database_url=url, cache_warm_on_startup=False, _env_file=None)
    app = create_app(settings)

    async with app.router.lifespan_context(app):
        assert app.state.kit.embedded_worker is True
        async with session_scope(app.state.kit.database.sessionmaker) as session:
            order_id = await _add_order(session)
            # The order service's call: the app's Celery app publishes to the in-memory broker.
            signature = app.state.kit.celery.signature(PROCESS_ORDER)
            task_id = send_after_commit(session, signature, args=(order_id,), countdown=0)

        result = app.state.kit.celery.AsyncResult(task_id)
        assert result.get(timeout=10) == {"status": "completed"}
        assert await _status(app, order_id) == "processed"


async def test_a_configured_broker_starts_no_worker_in_the_api(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/kit.db"
    migrations.upgrade(url)
    settings = Settings(
        env="test",
        database_url=url,
        celery_broker_url="redis://127.0.0.1:1/0",  # never contacted: no worker is started
        cache_warm_on_startup=False,
        _env_file=None,
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        assert app.state.kit.embedded_worker is False


async def test_an_order_placed_on_the_embedded_default_is_relayed_and_processed(
    tmp_path: Path,
) -> None:
    """The outbox row the order writes is published by the relay in the API process (woken by
    the commit) to the in-memory broker, and the worker thread processes the order."""
    url = f"sqlite:///{tmp_path}/kit.db"
    migrations.upgrade(url)
    settings = Settings(
        env="test",
        database_url=url,
        cache_warm_on_startup=False,
        order_processing_delay_s=0,
        _env_file=None,
    )
    app = create_app(settings, redis=fakeredis.FakeAsyncRedis())
    async with app.router.lifespan_context(app):
        state = app_state(app)
        assert state.outbox_relay is not None
        async with session_scope(state.database.sessionmaker) as session:
            user = await UserFactory.create_async(session, email="buyer@example.com")
            item = await ItemFactory.create_async(
                session, title="Widget", price=Decimal("4.00"), owner=user, stock=2
            )
        order_in = OrderCreate.model_validate({"items": [{"item_id": item.id, "quantity": 1}]})
        with record_task_events(state.celery) as events:
            async with session_scope(state.database.sessionmaker) as session:
                order, _ = await place_order(
                    session, state, user.id, order_in, idempotency_key=None
                )

            async def processed() -> bool:
                return await _status(app, order.id) == "processed"

            await wait_until_async(processed, "the order to be processed", timeout_s=10)
        assert [e.args for e in events.published] == [[order.id]]
        async with state.database.sessionmaker() as session:
            assert await session.scalar(select(func.count()).select_from(OutboxMessage)) == 0
