"""Order creation throughput on PostgreSQL, asked for by the orders issue (guide: "Order
Processing Flow").

One round places one order of three lines through `reference_app.crud.order.create_order`: the
conditional stock decrements, the order, its lines and payment, then a flush. Sending the Celery
task is replaced by a counter (the broker is not what is measured); the harness rolls the whole
run back afterwards. OPS in the report is orders per second on one connection.
"""

from __future__ import annotations

import random

import pytest
from pytest_benchmark.fixture import BenchmarkFixture
from sqlalchemy.ext.asyncio import AsyncSession

from reference_app.crud import order as order_crud
from reference_app.schemas.order import OrderCreate, OrderLineIn
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
    enqueued: list[int] = []

    def payload() -> OrderCreate:
        return OrderCreate(
            items=[OrderLineIn(item_id=i, quantity=1) for i in rng.sample(item_ids, LINES)]
        )

    async def place(order_in: OrderCreate) -> bool:
        _, created = await order_crud.create_order(
            db_session,
            user_id=owner.id,
            order_in=order_in,
            idempotency_key=None,
            enqueue=lambda _session, order_id: enqueued.append(order_id),
        )
        db_session.expunge_all()
        return created

    created = benchmark.pedantic(  # type: ignore[no-untyped-call]
        lambda order_in: run(place(order_in)),
        setup=lambda: ((payload(),), {}),
        rounds=200,
        warmup_rounds=5,
    )
    assert created
    assert len(enqueued) == 205  # every round and warm-up placed exactly one order
