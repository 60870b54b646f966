"""A Redis that accepts connections and never answers (paused, partitioned): the fail-open paths
must degrade as they do when it refuses, not pay the socket timeout on every call
(patterns/resilience.py)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from patterns.resilience import CircuitBreaker
from patterns.testing import FakeClock, make_client
from reference_app.core.config import Settings
from reference_app.core.redis import make_redis
from tests.integration.conftest import AccountFactory, app_on_session

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ME = "/api/v1/users/me"


class HungServer:
    """Accepts connections, reads whatever is sent, answers nothing."""

    def __init__(self) -> None:
        self.connections = 0
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: list[asyncio.StreamWriter] = []

    async def _swallow(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self._writers.append(writer)
        while await reader.read(65536):
            pass

    async def __aenter__(self) -> HungServer:
        self._server = await asyncio.start_server(self._swallow, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for writer in self._writers:
            writer.close()


@pytest_asyncio.fixture
async def hung() -> AsyncIterator[HungServer]:
    async with HungServer() as server:
        yield server


async def _client(hung: HungServer, breaker: CircuitBreaker) -> Redis:
    settings = Settings(redis_url=f"redis://127.0.0.1:{hung.port}/0")
    return make_redis(settings, breaker=breaker)


async def test_after_one_timeout_calls_fail_at_once_until_the_window_ends(
    hung: HungServer,
) -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(open_for=2.0, clock=clock)
    client = await _client(hung, breaker)
    try:
        with pytest.raises(RedisConnectionError):  # the timeout, then the retry finds it open
            await client.get("k")
        assert breaker.trips == 1
        seen = hung.connections
        assert seen >= 1
        for _ in range(20):  # the circuit is open: no call reaches the server
            with pytest.raises(RedisConnectionError, match="circuit open"):
                await client.get("k")
        assert hung.connections == seen
        clock.now += 2.0  # the window is over: the next call tries the server again
        with pytest.raises(RedisConnectionError):
            await client.get("k")
        assert hung.connections > seen
        assert breaker.trips == 2
    finally:
        await client.aclose()


async def test_requests_stay_answered_from_the_database_while_redis_hangs(
    settings: Settings,
    db_engine: AsyncEngine,
    db_session: AsyncSession,
    hung: HungServer,
    make_account: AccountFactory,
) -> None:
    """The revocation check fails open (the default) and the user comes from the database; only
    the first request pays Redis's timeout."""
    account = await make_account()
    breaker = CircuitBreaker(open_for=60.0)
    redis = await _client(hung, breaker)
    app = app_on_session(settings, db_engine, db_session, redis)
    try:
        async with make_client(app, db_session) as c:
            statuses = [(await c.get(ME, headers=account.headers)).status_code for _ in range(10)]
            ready = await c.get("/health/ready")
        assert statuses == [200] * 10
        assert breaker.trips == 1
        assert hung.connections <= 2  # the first request's connection (and its retry), no more
        assert ready.status_code == 503
        assert [d["check"] for d in ready.json()["error"]["details"]] == ["redis"]
    finally:
        await redis.aclose()
