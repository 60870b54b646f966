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
import itertools
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, TypeVar

import pytest
import pytest_asyncio
from pydantic import BaseModel
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
