"""The API engine runs without pre-ping (patterns/db/engine.py): what happens when PostgreSQL
drops every connection, e.g. on a restart or a failover, kills a statement's backend, or answers
a new connection with "starting up" or "too many clients"."""

from __future__ import annotations

import asyncio
import struct
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import psycopg
import pytest
import pytest_asyncio
from fastapi import Depends
from redis.asyncio import Redis
from sqlalchemy import event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from patterns.db import Database, make_async_engine
from patterns.testing import make_client, wait_until_async
from reference_app.core.config import Settings
from reference_app.core.db import get_db
from reference_app.main import create_app

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SSL_REQUEST = 80877103  # the code of PostgreSQL's SSLRequest message


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


async def _statement_outcomes(engine: AsyncEngine, count: int) -> list[str]:
    """`count` statements on fresh checkouts: "ok", "invalidated" for a recognised disconnect,
    or the error otherwise."""
    outcomes: list[str] = []
    for _ in range(count):
        try:
            async with engine.connect() as conn:
                assert (await conn.execute(text("SELECT 1"))).scalar() == 1
            outcomes.append("ok")
        except DBAPIError as exc:
            outcomes.append("invalidated" if exc.connection_invalidated else repr(exc))
    return outcomes


def _count_connects(engine: AsyncEngine) -> list[object]:
    """The DBAPI connections the pool opens from now on."""
    connects: list[object] = []
    event.listen(
        engine.sync_engine, "connect", lambda dbapi_conn, _record: connects.append(dbapi_conn)
    )
    return connects


async def _pooled_drivers(engine: AsyncEngine, count: int) -> list[Any]:
    """Fill the pool with `count` used connections, idle again; return their asyncpg connections."""
    conns = [await engine.connect() for _ in range(count)]
    drivers = []
    for conn in conns:
        await conn.execute(text("SELECT 1"))
        drivers.append((await conn.get_raw_connection()).driver_connection)
    for conn in conns:
        await conn.close()
    return drivers


async def test_after_the_server_drops_every_connection_at_most_the_first_statement_fails(
    scratch_database: str,
) -> None:
    """The worst case: the checkout runs before the event loop has seen any socket close (the
    termination blocked it), so the check at checkout cannot tell the connections are dead."""
    database_url = scratch_database
    engine = make_async_engine(database_url, pool_size=3, max_overflow=0)
    try:
        # Three pooled connections, all idle in the pool when the server drops them.
        await _pooled_drivers(engine, 3)
        assert _terminate_backends(database_url) >= 3

        # The first checkout may hand out a dead connection: then that one statement fails, as
        # a recognised disconnect, which invalidates the whole pool. Either way the other dead
        # connections are never handed out: every later statement succeeds.
        outcomes = await _statement_outcomes(engine, 6)
        assert outcomes[0] in {"ok", "invalidated"}
        assert outcomes[1:] == ["ok"] * 5
    finally:
        await engine.dispose()


async def test_connections_the_server_dropped_while_the_pool_was_idle_are_not_handed_out(
    scratch_database: str,
) -> None:
    """An API idle during a restart: its event loop sees the sockets close, and the checkout
    skips those connections, so not even the first request fails."""
    engine = make_async_engine(scratch_database, pool_size=3, max_overflow=0)
    try:
        drivers = await _pooled_drivers(engine, 3)
        connects = _count_connects(engine)
        assert _terminate_backends(scratch_database) >= 3
        # the loop reads the EOFs meanwhile
        await wait_until_async(
            lambda: all(driver.is_closed() for driver in drivers), "the sockets to close"
        )

        assert await _statement_outcomes(engine, 6) == ["ok"] * 6
        assert len(connects) == 3  # each dead connection replaced once, at its checkout
    finally:
        await engine.dispose()


async def test_a_pooled_connection_closed_on_the_client_side_is_replaced_at_checkout(
    scratch_database: str,
) -> None:
    """Deterministic: the asyncpg connection is closed locally while it sits in the pool; the
    next checkout discards it and connects afresh instead of failing a statement."""
    engine = make_async_engine(scratch_database, pool_size=1, max_overflow=0)
    try:
        connects = _count_connects(engine)
        raw = await engine.raw_connection()
        dead = raw.driver_connection
        assert dead is not None
        dead.terminate()
        raw.close()  # back to the pool, closed
        assert len(connects) == 1

        async with engine.connect() as conn:
            assert (await conn.execute(text("SELECT 1"))).scalar() == 1
            assert (await conn.get_raw_connection()).driver_connection is not dead
        assert len(connects) == 2
    finally:
        await engine.dispose()


async def test_a_backend_terminated_mid_statement_is_a_disconnect(scratch_database: str) -> None:
    """What a statement in flight sees on a fast or immediate server stop: asyncpg raises a
    database error (08003, or 57P01 if the FATAL message is read first), not an InterfaceError;
    it must still invalidate the connection."""
    engine = make_async_engine(scratch_database, pool_size=2, max_overflow=0)
    try:
        with pytest.raises(DBAPIError) as failed:
            async with engine.connect() as conn:
                await conn.execute(text("SELECT pg_terminate_backend(pg_backend_pid())"))
        assert getattr(failed.value.orig, "sqlstate", None) in {"57P01", "08003"}
        assert failed.value.connection_invalidated
        async with engine.connect() as conn:  # the dead connection was not put back
            assert (await conn.execute(text("SELECT 1"))).scalar() == 1
    finally:
        await engine.dispose()


async def _assert_503(
    database_url: str,
    redis: Redis,
    path: str,
    endpoint: Callable[..., Awaitable[None]] | None = None,
) -> None:
    """GET `path` on the app over `database_url` (with `endpoint` added there, if given): the
    outage answer, 503 with Retry-After in the envelope."""
    settings = Settings(env="test", database_url=database_url, redis_url="redis://unused")
    database = Database.from_url(database_url, pool_size=1, max_overflow=0)
    app = create_app(settings, database=database, redis=redis)
    if endpoint is not None:
        app.get(path)(endpoint)
    try:
        async with make_client(app, raise_app_exceptions=False) as c:
            r = await c.get(path)
        assert r.status_code == 503, r.text
        assert r.headers["Retry-After"] == "1"
        assert r.json()["error"]["code"] == "service_unavailable"
    finally:
        await database.dispose()


async def test_a_request_whose_connection_is_killed_gets_503_not_500(
    scratch_database: str, redis_client: Redis
) -> None:
    async def killed(session: AsyncSession = Depends(get_db)) -> None:
        await session.execute(text("SELECT pg_terminate_backend(pg_backend_pid())"))

    await _assert_503(scratch_database, redis_client, "/killed", killed)


async def _refusing_server(state: str, message: str) -> AsyncIterator[int]:
    """A port that speaks just enough of PostgreSQL's protocol to refuse every connection with
    a FATAL `state`, as a starting-up or full server does."""
    fields = b"".join(
        tag + value.encode() + b"\0"
        for tag, value in ((b"S", "FATAL"), (b"V", "FATAL"), (b"C", state), (b"M", message))
    )
    error = b"E" + struct.pack("!I", 4 + len(fields) + 1) + fields + b"\0"

    async def refuse(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            length, code = struct.unpack("!II", await reader.readexactly(8))
            if code == SSL_REQUEST:  # no TLS here; the client goes on in plain text
                writer.write(b"N")
                await writer.drain()
                length, code = struct.unpack("!II", await reader.readexactly(8))
            await reader.readexactly(length - 8)  # the rest of the startup message
            writer.write(error)
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(refuse, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        await server.wait_closed()


STARTING_UP = ("57P03", "the database system is starting up")
FULL = ("53300", "sorry, too many clients already")


@pytest_asyncio.fixture(params=[STARTING_UP, FULL], ids=["starting-up", "too-many-clients"])
async def refusing_database(request: pytest.FixtureRequest) -> AsyncIterator[tuple[str, str]]:
    state, message = request.param
    async for port in _refusing_server(state, message):
        yield f"postgresql://postgres@127.0.0.1:{port}/kit", state


async def test_a_server_refusing_connections_is_an_invalidated_connection(
    refusing_database: tuple[str, str],
) -> None:
    url, state = refusing_database
    engine = make_async_engine(url, pool_size=1, max_overflow=0)
    try:
        with pytest.raises(DBAPIError) as failed:
            async with engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        assert getattr(failed.value.orig, "sqlstate", None) == state
        assert failed.value.connection_invalidated
    finally:
        await engine.dispose()


async def test_a_request_while_the_server_refuses_connections_gets_503(
    refusing_database: tuple[str, str], redis_client: Redis
) -> None:
    url, _ = refusing_database
    await _assert_503(url, redis_client, "/api/v1/items")
