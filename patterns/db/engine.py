"""Async engines for the API, sync URLs for Alembic and Celery, from one configured URL."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, cast

from sqlalchemy import event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import URL, ExceptionContext, make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

ASYNC_PG_DRIVER = "asyncpg"  # against psycopg 3: tests/benchmarks/test_driver_bench.py
_ASYNC_DRIVERS = {"postgresql": ASYNC_PG_DRIVER, "sqlite": "aiosqlite"}
_SYNC_DRIVERS = {"postgresql": "psycopg", "sqlite": "pysqlite"}


def _with_driver(url: str | URL, drivers: dict[str, str]) -> URL:
    u = make_url(url)
    backend = u.get_backend_name()
    if backend == "postgres":
        backend = "postgresql"
    if backend not in drivers:
        raise ValueError(f"unsupported database backend {backend!r} (postgresql or sqlite)")
    return u.set(drivername=f"{backend}+{drivers[backend]}")


def async_url(url: str | URL) -> URL:
    """`postgresql://…` or `sqlite:///…` with the kit's async driver."""
    return _with_driver(url, _ASYNC_DRIVERS)


def sync_url(url: str | URL) -> URL:
    """The same database through a sync driver (psycopg 3 / pysqlite) for Alembic and Celery."""
    return _with_driver(url, _SYNC_DRIVERS)


def is_sqlite(url: str | URL) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def conflict_insert(session: AsyncSession, model: Any) -> postgresql.Insert:
    """`INSERT … ON CONFLICT` for the session's backend: PostgreSQL's and SQLite's constructs
    have the same `on_conflict_do_nothing`/`on_conflict_do_update`/`excluded` API, but each
    renders only on its own dialect."""
    if session.get_bind().dialect.name == "sqlite":
        return cast(postgresql.Insert, sqlite.insert(model))
    return postgresql.insert(model)


def sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    """A SQLite connection's settings, on every new connection (`event.listen(engine,
    "connect", sqlite_pragmas)`): foreign keys enforced, as PostgreSQL does; WAL, so readers
    do not wait for the writer; and a writer waits up to 5 s for the lock instead of failing."""
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA busy_timeout=5000")
    cur.close()


# SQLSTATEs that say the server, not the statement, failed. SQLAlchemy's asyncpg dialect only
# recognises a closed socket as a disconnect; these arrive as ordinary database errors.
_SERVER_GONE_CLASS = "08"  # connection exception: "connection does not exist", "failure", …
_SERVER_GONE_STATES = frozenset(
    {
        "57P01",  # admin shutdown: the backend was terminated, or a fast/immediate stop
        "57P02",  # crash shutdown
        "57P03",  # cannot connect now: the server is starting up or shutting down
        "53300",  # too many connections (raised at connect only)
    }
)


def _mark_server_gone(ctx: ExceptionContext) -> None:
    """Treat a lost or refused server as a disconnect, not a failed statement.

    Marked this way, SQLAlchemy invalidates the connection (and every pooled connection older
    than it), and the error reaches the app with `connection_invalidated` set, which the error
    handlers answer with 503 + Retry-After, as for a refused connection. Without it, a request in
    flight when PostgreSQL restarts, or one that connects while it starts up, was a 500. asyncpg's
    `InternalClientError` ("cannot switch to state …") leaves its connection unusable too.
    """
    if ctx.is_disconnect:
        return
    orig = ctx.original_exception
    state = getattr(orig, "sqlstate", None) or ""
    client_error = getattr(ctx.dialect.loaded_dbapi, "InternalClientError", None)
    if (
        state.startswith(_SERVER_GONE_CLASS)
        or state in _SERVER_GONE_STATES
        or (client_error is not None and isinstance(orig, client_error))
    ):
        ctx.is_disconnect = True


def _discard_closed(_dbapi_conn: Any, record: Any, _proxy: Any) -> None:
    """At checkout, refuse a pooled connection that asyncpg already knows is closed.

    After a PostgreSQL restart, an idle pool holds connections whose sockets the event loop has
    seen close; without this, each one was handed out and failed its request (503). Raising
    `DisconnectionError` here makes the pool invalidate that connection and connect afresh
    within the same checkout. It asks the local connection object, with no round trip, so it
    cannot catch a connection whose death the event loop has not yet noticed.
    """
    if record.driver_connection.is_closed():
        raise DisconnectionError("the asyncpg connection is closed")


def make_async_engine(
    url: str | URL,
    *,
    pool_size: int = 32,
    max_overflow: int = 8,
    echo: bool = False,
    pre_ping: bool = False,
) -> AsyncEngine:
    """An engine that fails fast when the server is gone instead of hanging a request.

    The pool: `pool_size` connections are kept once opened; up to `max_overflow` more are opened
    under a burst and closed again on return. A `pool_size` below the requests a worker has in
    flight at once makes every request past it open and close a connection (a PostgreSQL backend
    started per request): size it from the worker's concurrency (docs/performance.md).

    No pre-ping by default: with asyncpg, SQLAlchemy's ping outside a transaction is three round
    trips (BEGIN, a statement, ROLLBACK) on every checkout, as many as a primary-key request
    needs for its own work, and the largest single cost the load test found (docs/performance.md).
    Instead, a checkout skips connections asyncpg already knows are closed (`_discard_closed`,
    no round trip), so an API idle during a restart gets fresh connections. A drop noticed only
    when the connection is used is handled there: SQLAlchemy recognises the disconnect
    (`_mark_server_gone` widens what counts as one), invalidates every pooled connection older
    than it, and only the requests in flight at that moment fail, with 503 (at most one, if the
    drop came between requests and the event loop had not yet seen the socket close)
    (tests/integration/test_engine_disconnect.py).
    """
    u = async_url(url)
    if u.get_backend_name() == "sqlite":
        engine = create_async_engine(u, echo=echo)
        event.listen(engine.sync_engine, "connect", sqlite_pragmas)
        return engine
    engine = create_async_engine(
        u,
        echo=echo,
        pool_size=pool_size,
        max_overflow=max_overflow,
        pool_pre_ping=pre_ping,
        pool_timeout=5,
        connect_args={"timeout": 3, "command_timeout": 30},
    )
    event.listen(engine.sync_engine, "handle_error", _mark_server_gone)
    event.listen(engine.sync_engine, "checkout", _discard_closed)
    return engine


@dataclass
class Database:
    """An engine and its session factory, created at start-up and disposed at shutdown."""

    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession] = field(init=False)
    read_sessionmaker: async_sessionmaker[AsyncSession] = field(init=False)

    def __post_init__(self) -> None:
        # expire_on_commit=False: objects stay readable after the dependency commits, while
        # the response is serialised.
        self.sessionmaker = async_sessionmaker(self.engine, expire_on_commit=False)
        # Sessions for requests that only read, on the same pool, in autocommit: no BEGIN
        # before the first statement and no COMMIT after the last, so a primary-key read is one
        # round trip instead of three. Under READ COMMITTED (PostgreSQL's default) every
        # statement reads its own snapshot inside a transaction too, so a read sees the same
        # rows either way. A write through one of these would commit statement by statement:
        # writes take `sessionmaker`.
        self.read_sessionmaker = async_sessionmaker(
            self.engine.execution_options(isolation_level="AUTOCOMMIT"), expire_on_commit=False
        )

    @classmethod
    def from_url(cls, url: str | URL, **engine_kwargs: Any) -> Database:
        return cls(make_async_engine(url, **engine_kwargs))

    async def dispose(self) -> None:
        await self.engine.dispose()
