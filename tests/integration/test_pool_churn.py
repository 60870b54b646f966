"""The default pool holds the documented concurrency without opening connections (guide:
"Connection Pooling"; docs/performance.md): once warm, a burst of 32 concurrent requests starts
no PostgreSQL backend. Counted by the database itself (`pg_stat_activity`) and by the pool's
own connect events; a pool smaller than the burst shows the churn the test would catch."""

from __future__ import annotations

import asyncio
from typing import Any

import psycopg
from httpx import AsyncClient
from redis.asyncio import Redis
from sqlalchemy import event

from patterns.db import Database
from patterns.testing import make_client
from reference_app.core.config import Settings
from reference_app.main import create_app

CLIENTS = 32  # the concurrency the kit's pool is sized for (docs/performance.md)
WAVES = 4


def _backends(database_url: str) -> set[int]:
    """The pids of the client backends connected to this test's database."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
            " AND backend_type = 'client backend' AND pid <> pg_backend_pid()"
        ).fetchall()
    return {int(pid) for (pid,) in rows}


async def _burst(client: AsyncClient) -> None:
    for _ in range(WAVES):
        responses = await asyncio.gather(
            *(client.get("/api/v1/items", params={"limit": 5}) for _ in range(CLIENTS))
        )
        assert {r.status_code for r in responses} == {200}


async def _opened_during_second_burst(
    settings: Settings, redis: Redis, database_url: str
) -> tuple[int, set[int]]:
    """(connections the pool opened, backends that appeared) during a burst after a warm one."""
    database = Database.from_url(
        database_url, pool_size=settings.db_pool_size, max_overflow=settings.db_max_overflow
    )
    opened = 0

    def count(*_: Any) -> None:
        nonlocal opened
        opened += 1

    event.listen(database.engine.sync_engine, "connect", count)
    app = create_app(settings, database=database, redis=redis)
    try:
        async with make_client(app) as client:
            await _burst(client)  # the pool grows to what the burst needs
            before, opened = _backends(database_url), 0
            await _burst(client)
            after = _backends(database_url)
    finally:
        await database.dispose()
    return opened, after - before


async def test_a_warm_default_pool_opens_no_connection_for_32_concurrent_requests(
    settings: Settings, redis_client: Redis, database_url: str
) -> None:
    opened, new_backends = await _opened_during_second_burst(settings, redis_client, database_url)
    assert opened == 0
    assert new_backends == set()


async def test_a_pool_smaller_than_the_burst_opens_connections_on_every_burst(
    settings: Settings, redis_client: Redis, database_url: str
) -> None:
    # The old defaults: 10 kept, 10 overflow closed as soon as they are returned.
    small = settings.model_copy(update={"db_pool_size": 10, "db_max_overflow": 10})
    opened, _ = await _opened_during_second_burst(small, redis_client, database_url)
    assert opened > 0
