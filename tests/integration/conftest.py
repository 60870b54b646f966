"""App and client fixtures on the harness's isolated PostgreSQL session and Redis database."""

from __future__ import annotations

import asyncio
import itertools
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

import pytest
import pytest_asyncio
from fastapi import FastAPI
from httpx import AsyncClient, Response
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from patterns.db import Database
from patterns.db.session import commit, rollback
from patterns.security import TokenType
from patterns.testing import make_client
from patterns.testing.backends import free_port
from reference_app.core.config import Settings
from reference_app.core.db import get_db, get_read_db
from reference_app.core.mail import RecordingMailBackend
from reference_app.core.redis import make_redis
from reference_app.main import create_app
from reference_app.models.item import Item
from reference_app.models.user import Role, User
from tests.factories import ItemFactory, UserFactory
from tests.integration.celery_fixtures import (  # noqa: F401 (fixtures, registered by import)
    celery_settings,
    celery_worker,
    start_celery_worker,
)

pytestmark = pytest.mark.integration


@pytest.fixture
def settings(database_url: str, redis_url: str) -> Settings:
    return Settings(env="test", database_url=database_url, redis_url=redis_url)


def app_on_session(
    settings: Settings, db_engine: AsyncEngine, db_session: AsyncSession, redis: Redis
) -> FastAPI:
    """The app whose requests all use `db_session` (savepoint-backed) and the given Redis."""
    application = create_app(settings, database=Database(db_engine), redis=redis)

    async def _test_db() -> AsyncIterator[AsyncSession]:
        # The same contract as get_db, on the test's savepoint-backed session.
        try:
            yield db_session
        except BaseException:
            await rollback(db_session)
            raise
        await commit(db_session)

    application.dependency_overrides[get_db] = _test_db
    application.dependency_overrides[get_read_db] = _test_db
    return application


@pytest_asyncio.fixture
async def app(
    settings: Settings, db_engine: AsyncEngine, db_session: AsyncSession, redis_client: Redis
) -> AsyncIterator[FastAPI]:
    """The app on this test's isolated session (rolled back) and Redis database (flushed)."""
    yield app_on_session(settings, db_engine, db_session, redis_client)


@pytest_asyncio.fixture
async def dead_redis() -> AsyncIterator[Redis]:
    """The app's Redis client pointed at a port nothing listens on: a Redis outage."""
    client = make_redis(Settings(redis_url=f"redis://127.0.0.1:{free_port()}/0"))
    yield client
    await client.aclose()


@pytest_asyncio.fixture
async def client(app: FastAPI, db_session: AsyncSession) -> AsyncIterator[AsyncClient]:
    async with make_client(app, db_session) as c:
        yield c


class Live(NamedTuple):
    """The app with its own sessions per request (real commits), as in production, a client of
    it, and sessions on the same committed data (the tables are emptied after the test)."""

    app: FastAPI
    client: AsyncClient
    db: async_sessionmaker[AsyncSession]


@pytest_asyncio.fixture
async def live(
    settings: Settings,
    db_engine: AsyncEngine,
    redis_client: Redis,
    committed_db: async_sessionmaker[AsyncSession],
) -> AsyncIterator[Live]:
    app = create_app(settings, database=Database(db_engine), redis=redis_client)
    async with make_client(app, raise_app_exceptions=False) as c:
        yield Live(app, c, committed_db)


async def committed_buyers_and_items(
    live: Live, buyers: int, stock: int, items: int = 1
) -> tuple[list[dict[str, str]], list[Item]]:
    """`buyers` committed users' auth headers, and `items` committed items of the first user's
    with `stock` in stock each."""
    async with live.db() as s:
        users = [await UserFactory.create_async(s) for _ in range(buyers)]
        made = [
            await ItemFactory.create_async(s, title="Widget", owner_id=users[0].id, stock=stock)
            for _ in range(items)
        ]
        await s.commit()
    tokens = [live.app.state.kit.tokens.create(user.id, TokenType.ACCESS)[0] for user in users]
    return [{"Authorization": f"Bearer {token}"} for token in tokens], made


@dataclass
class Account:
    user: User
    password: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


AccountFactory = Callable[..., Awaitable[Account]]
ADMIN_USERS = "/api/v1/admin/users"


async def admin_update(
    client: AsyncClient, admin: Account, user_id: int, **changes: Any
) -> Response:
    """`PATCH /admin/users/{user_id}` as `admin`: an admin's change to another account."""
    return await client.patch(f"{ADMIN_USERS}/{user_id}", headers=admin.headers, json=changes)


@pytest.fixture
def make_account(app: FastAPI, db_session: AsyncSession) -> AccountFactory:
    """Create a user of a given role straight in the database, with a valid access token."""
    counter = itertools.count(1)

    async def _make(
        role: Role = Role.USER, *, active: bool = True, email: str | None = None
    ) -> Account:
        password = f"pw-{uuid.uuid4().hex[:12]}"
        user = await UserFactory.create_async(
            db_session,
            email=email or f"{role.value}{next(counter)}-{uuid.uuid4().hex[:6]}@example.com",
            hashed_password=app.state.kit.passwords.hash(password),
            full_name=f"Test {role.value.title()}",
            role=role,
            is_active=active,
        )
        # commit() releases a SAVEPOINT (the harness's outer transaction is still rolled back
        # after the test) so a request that fails and rolls back keeps this account.
        await db_session.commit()
        token, _ = app.state.kit.tokens.create(user.id, TokenType.ACCESS)
        return Account(user, password, token)

    return _make


@pytest.fixture
async def account(make_account: AccountFactory) -> Account:
    """A user (role user) with a valid access token."""
    return await make_account()


@pytest.fixture
def mailer(app: FastAPI) -> RecordingMailBackend:
    """Replace the logging mail backend with one that records what was sent."""
    backend = RecordingMailBackend()
    app.state.kit.mailer = backend
    return backend


async def run_kit(*args: str, env: Mapping[str, str]) -> subprocess.CompletedProcess[str]:
    """`python -m reference_app *args` in a new process, with `env` over this process's
    environment, off the event loop; its output captured as text."""
    command = [sys.executable, "-m", "reference_app", *args]
    return await asyncio.to_thread(
        subprocess.run, command, env={**os.environ, **env}, capture_output=True, text=True
    )
