"""The API engine runs without pre-ping (patterns/db/engine.py): what happens when PostgreSQL
drops every connection, e.g. on a restart or a failover."""

from __future__ import annotations

import psycopg
import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from patterns.db import make_async_engine

pytestmark = pytest.mark.integration


def _terminate_backends(database_url: str) -> int:
    url = make_url(database_url)
    admin = url.set(database="postgres").render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = %s AND pid <> pg_backend_pid()",
            (url.database,),
        ).fetchall()
    return len(rows)


async def test_after_the_server_drops_all_connections_one_request_fails_then_the_pool_recovers(
    scratch_database: str,
) -> None:
    database_url = scratch_database
    engine = make_async_engine(database_url, pool_size=3, max_overflow=0)
    try:
        # Three pooled connections, all idle in the pool when the server drops them.
        conns = [await engine.connect() for _ in range(3)]
        for conn in conns:
            await conn.execute(text("SELECT 1"))
        for conn in conns:
            await conn.close()
        assert _terminate_backends(database_url) >= 3

        # The first checkout hands out a dead connection: that one statement fails, as a
        # recognised disconnect...
        with pytest.raises(DBAPIError) as failed:
            async with engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        assert failed.value.connection_invalidated

        # ...which invalidates the whole pool, so the other two dead connections are never
        # handed out: every later statement succeeds.
        for _ in range(5):
            async with engine.connect() as conn:
                assert (await conn.execute(text("SELECT 1"))).scalar() == 1
    finally:
        await engine.dispose()
