"""Benchmark fixtures: async work timed on the harness's own session loop.

pytest-benchmark times synchronous calls, and the harness's fixtures (`db_session`,
`redis_client`, `db_engine`) are async, bound to pytest-asyncio's session loop. Rather than a
second, synchronous stack (a psycopg engine and a sync Redis client that the app never uses),
the benchmarked callable drives the app's real async code to completion on that same loop:
`benchmark(lambda: run(coro()))`. Between tests the loop is idle, so `run_until_complete` is
allowed; its own cost (a few microseconds per call) is part of every figure and the same in
every run, so comparisons between runs are unaffected.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import os
import statistics
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, TypeVar

import pytest
import pytest_asyncio
from pydantic import BaseModel
from pytest_benchmark.fixture import BenchmarkFixture
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession

from patterns.crud import CRUDBase
from reference_app.models.item import Inventory, Item
from reference_app.models.user import User
from tests.factories import UserFactory

T = TypeVar("T")
Run = Callable[[Awaitable[Any]], Any]


class UserIn(BaseModel):
    """A user to insert through `CRUDBase` in the data-access benchmarks."""

    email: str
    hashed_password: str = "not-a-real-hash"  # hashing is benchmarked on its own


users = CRUDBase[User, UserIn, UserIn](User)
# One argon2 hash shared by every benchmark user: hashing is benchmarked on its own
# (test_security_bench.py) and would otherwise be all that an insert benchmark measures.
SHARED_HASH = "$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHRzYWx0$" + "A" * 43


REFERENCE_REPEATS = 5
# Saved with the reference's time: runs that timed a different reference are not compared by it.
REFERENCE_NAME = "2x4 sha256 of 2 MB + squares to 20k"
_REFERENCE_DATA = b"k" * 2_000_000


def _hash_chunks() -> None:
    for _ in range(4):  # hashlib releases the GIL on large buffers: this thread runs beside others
        hashlib.sha256(_REFERENCE_DATA).digest()


def reference_work() -> int:
    """A fixed piece of work (a few milliseconds) that no change to the kit can make slower,
    timed beside every benchmark to say how fast the machine was then. Like the benchmarks, it
    uses both cores (two hashing threads) and some pure Python, so other work on the machine
    slows it about as much as them."""
    threads = [threading.Thread(target=_hash_chunks) for _ in range(2)]
    for thread in threads:
        thread.start()
    total = sum(i * i for i in range(20_000))
    for thread in threads:
        thread.join()
    return total


def time_reference() -> list[float]:
    times = []
    for _ in range(REFERENCE_REPEATS):
        start = time.perf_counter()
        reference_work()
        times.append(time.perf_counter() - start)
    return times


@pytest.fixture(autouse=True)
def machine_speed(benchmark: BenchmarkFixture) -> Iterator[None]:
    """The reference work's median time just before and just after each benchmark, saved with
    it (`extra_info["reference_s"]`): the comparison divides a benchmark's change by the change
    of this figure, so a machine that is busier in one run than in the other is not a regression
    (tests/benchmarks/compare.py)."""
    before = time_reference()
    yield
    benchmark.extra_info["reference_s"] = statistics.median([*before, *time_reference()])
    benchmark.extra_info["reference"] = REFERENCE_NAME
    # How busy the machine was: the comparison warns when it was busier than it has cores.
    benchmark.extra_info["load1"] = os.getloadavg()[0]
    benchmark.extra_info["cpus"] = os.cpu_count() or 1


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def session_loop() -> asyncio.AbstractEventLoop:
    """The loop the harness's async fixtures live on."""
    return asyncio.get_running_loop()


@pytest.fixture
def run(session_loop: asyncio.AbstractEventLoop) -> Run:
    """`run(coro)`: drive a coroutine to completion on the harness's loop, return its result."""
    return session_loop.run_until_complete


@pytest.fixture
def unique() -> Iterator[int]:
    """A counter for data that must differ in every benchmark round (unique columns)."""
    return itertools.count(1)


async def add_owner(session: AsyncSession, email: str = "bench-owner@example.com") -> User:
    return await UserFactory.create_async(
        session, email=email, hashed_password=SHARED_HASH, full_name="Bench Owner"
    )


async def add_stocked_items(
    session: AsyncSession, owner_id: int, count: int, *, stock: int = 1_000_000
) -> list[int]:
    """`count` items with stock, inserted in batches of 1000 (one statement each): the bulk
    path, where building `count` ORM objects through a factory would dominate the setup."""
    ids: list[int] = []
    for start in range(0, count, 1000):
        rows = [
            {
                "title": f"Bench item {i}",
                "category": ("books", "games", "tools", "music")[i % 4],
                "price": 1 + i % 500,
                "owner_id": owner_id,
            }
            for i in range(start, min(count, start + 1000))
        ]
        batch = list(await session.scalars(insert(Item).returning(Item.id), rows))
        await session.execute(insert(Inventory), [{"item_id": i, "quantity": stock} for i in batch])
        ids += batch
    return ids
