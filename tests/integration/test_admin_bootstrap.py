"""The first admin: from `KIT_FIRST_ADMIN_*` at start-up and from `create-admin`, idempotently."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest
from pydantic import SecretStr
from redis.asyncio import Redis
from sqlalchemy import func, select
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from patterns.db import Database
from patterns.testing import make_client
from patterns.testing.backends import free_port
from reference_app.core.config import Settings
from reference_app.main import create_app
from reference_app.models.user import Role, User
from tests.integration.conftest import run_kit


async def _admins(session: AsyncSession, email: str) -> list[User]:
    return list(await session.scalars(select(User).where(User.email == email)))


async def test_first_admin_is_created_once_even_by_concurrent_starts(
    settings: Settings,
    db_engine: AsyncEngine,
    redis_client: Redis,
    committed_db: async_sessionmaker[AsyncSession],
) -> None:
    configured = settings.model_copy(
        update={
            "first_admin_email": "Root@Example.com",
            "first_admin_password": SecretStr("root-password-1"),
        }
    )

    async def start() -> None:
        app = create_app(configured, database=Database(db_engine), redis=redis_client)
        async with app.router.lifespan_context(app):
            pass

    await asyncio.gather(*(start() for _ in range(4)))
    async with committed_db() as session:
        admins = await _admins(session, "root@example.com")
    assert len(admins) == 1
    assert admins[0].role == Role.ADMIN.value
    assert admins[0].hashed_password.startswith("$argon2id$")


@contextlib.asynccontextmanager
async def _forward(port: int, host: str, target_port: int) -> AsyncIterator[None]:
    """Listen on `port` and relay every connection to the real server: the database "comes
    back" on an address where nothing answered before."""

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        writer.close()

    async def relay(client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        server_r, server_w = await asyncio.open_connection(host, target_port)
        await asyncio.gather(pipe(client_r, server_w), pipe(server_r, client_w))

    server = await asyncio.start_server(relay, "127.0.0.1", port)
    try:
        yield
    finally:
        server.close()


@pytest.mark.slow
async def test_a_server_started_before_its_database_comes_up_and_creates_the_admin_later(
    settings: Settings,
    database_url: str,
    redis_client: Redis,
    committed_db: async_sessionmaker[AsyncSession],
) -> None:
    real = make_url(database_url)
    port = free_port()  # nothing listens here yet: the database is down
    via_port = real.set(host="127.0.0.1", port=port).render_as_string(hide_password=False)
    configured = settings.model_copy(
        update={
            "database_url": via_port,
            "first_admin_email": "late@example.com",
            "first_admin_password": SecretStr("late-password-1"),
        }
    )
    database = Database.from_url(via_port)
    app = create_app(configured, database=database, redis=redis_client)
    try:
        async with app.router.lifespan_context(app):  # start-up does not fail
            retry = app.state.kit.first_admin_retry
            assert retry is not None
            assert not retry.done()
            async with make_client(app, raise_app_exceptions=False) as c:
                r = await c.get("/api/v1/items")
            assert r.status_code == 503, r.text
            assert r.headers["Retry-After"] == "1"
            async with _forward(port, real.host or "127.0.0.1", real.port or 5432):
                await asyncio.wait_for(retry, timeout=30)
                async with make_client(app, raise_app_exceptions=False) as c:
                    assert (await c.get("/api/v1/items")).status_code == 200
    finally:
        await database.dispose()
    async with committed_db() as session:
        admins = await _admins(session, "late@example.com")
    assert [a.role for a in admins] == [Role.ADMIN.value]


@pytest.mark.slow
async def test_create_admin_command_is_idempotent(
    database_url: str, committed_db: async_sessionmaker[AsyncSession]
) -> None:
    env = {"KIT_DATABASE_URL": database_url, "KIT_ADMIN_PASSWORD": "cli-password-1"}
    args = ("create-admin", "--email", "cli@example.com")
    first = await run_kit(*args, env=env)
    assert first.returncode == 0, first.stderr
    assert "created" in first.stdout
    second = await run_kit(*args, env=env)
    assert second.returncode == 0, second.stderr
    assert "already exists" in second.stdout
    async with committed_db() as session:
        count = await session.scalar(
            select(func.count()).select_from(User).where(User.email == "cli@example.com")
        )
    assert count == 1
