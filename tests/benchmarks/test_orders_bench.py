"""Order creation throughput on PostgreSQL, asked for by the orders issue (guide: "Order
Processing Flow").

One round places one order of three lines through `reference_app.services.orders.place_order`:
the stock reservation, then the order, its lines, payment, activity and outbox row. Nothing is
committed, so no relay publishes the task (the broker is not what is measured); the harness
rolls the whole run back afterwards. OPS in the report is orders per second on one
connection.
"""

from __future__ import annotations

import random

import fakeredis
import pytest
from pytest_benchmark.fixture import BenchmarkFixture
from sqlalchemy.ext.asyncio import AsyncSession

from reference_app.core.config import Settings
from reference_app.core.state import app_state
from reference_app.main import create_app
from reference_app.schemas.order import OrderCreate, OrderLineIn
from reference_app.services.orders import place_order
from tests.benchmarks.conftest import Run, add_owner, add_stocked_items

ITEMS = 1000
LINES = 3


@pytest.mark.benchmark(group="orders: create one order of 3 lines")
def test_bench_create_order_of_three_lines(
    benchmark: BenchmarkFixture, run: Run, db_session: AsyncSession
) -> None:
    owner = run(add_owner(db_session))
    item_ids: list[int] = run(add_stocked_items(db_session, owner.id, ITEMS))
    rng = random.Random(8)
    placed: list[int] = []
    settings = Settings(env="test", cache_warm_on_startup=False, _env_file=None)
    state = app_state(create_app(settings, redis=fakeredis.FakeAsyncRedis()))

    def payload() -> OrderCreate:
        return OrderCreate(
            items=[OrderLineIn(item_id=i, quantity=1) for i in rng.sample(item_ids, LINES)]
        )

    async def place(order_in: OrderCreate) -> bool:
        order, created = await place_order(
            db_session,
            state,
            owner.id,
            order_in,
            idempotency_key=None,
        )
        placed.append(order.id)
        db_session.expunge_all()
        return created

    created = benchmark.pedantic(  # type: ignore[no-untyped-call]
        lambda order_in: run(place(order_in)),
        setup=lambda: ((payload(),), {}),
        rounds=200,
        warmup_rounds=5,
    )
    assert created
    assert len(set(placed)) == 205  # every round and warm-up placed exactly one order
