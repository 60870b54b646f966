"""App and client fixtures on the harness's isolated PostgreSQL session and Redis database."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from fastapi import FastAPI
from httpx import AsyncClient
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from patterns.db import Database
from patterns.db.session import commit, rollback
from patterns.testing import make_client
from reference_app.core.config import Settings
from reference_app.core.db import get_db
from reference_app.main import create_app

pytestmark = pytest.mark.integration


@pytest.fixture
def settings(database_url: str, redis_url: str) -> Settings:
    return Settings(env="test", database_url=database_url, redis_url=redis_url)


@pytest_asyncio.fixture
async def app(
    settings: Settings, db_engine: AsyncEngine, db_session: AsyncSession, redis_client: Redis
) -> AsyncIterator[FastAPI]:
    """The app on this test's isolated session (rolled back) and Redis database (flushed)."""
    application = create_app(settings, database=Database(db_engine), redis=redis_client)

    async def _test_db() -> AsyncIterator[AsyncSession]:
        # The same contract as get_db, on the test's savepoint-backed session.
        try:
            yield db_session
        except BaseException:
            await rollback(db_session)
            raise
        await commit(db_session)

    application.dependency_overrides[get_db] = _test_db
    yield application


@pytest_asyncio.fixture
async def client(app: FastAPI, db_session: AsyncSession) -> AsyncIterator[AsyncClient]:
    async with make_client(app, db_session) as c:
        yield c
