"""Readiness reflects the real dependencies; an outage is a 503 in the envelope, never a hang."""

from __future__ import annotations

import pytest
from httpx import AsyncClient
from redis.asyncio import Redis

from patterns.db import Database
from patterns.testing import make_client
from patterns.testing.backends import free_port
from reference_app.core.config import Settings
from reference_app.core.redis import make_redis
from reference_app.main import create_app


async def test_live_and_ready_on_real_servers(client: AsyncClient) -> None:
    assert (await client.get("/health/live")).json() == {"status": "ok", "checks": {}}
    r = await client.get("/health/ready")
    assert r.status_code == 200
    assert r.json()["checks"] == {"database": "ok", "redis": "ok"}


async def test_live_answered_before_routing_keeps_its_body_headers_and_request_id(
    client: AsyncClient,
) -> None:
    r = await client.get("/health/live", headers={"X-Request-ID": "probe-1"})
    assert r.status_code == 200
    assert r.content == b'{"status":"ok","checks":{}}'
    assert r.headers["content-type"] == "application/json"
    assert r.headers["X-Request-ID"] == "probe-1"
    head = await client.head("/health/live")  # as load balancers often probe
    assert head.status_code == 200
    assert head.content == b""
    assert head.headers["content-length"] == str(len(r.content))
    posted = await client.post("/health/live")  # other methods still reach the router
    assert posted.status_code == 405


async def test_ready_is_503_naming_the_database_when_it_is_down(
    settings: Settings, redis_client: Redis
) -> None:
    dead = Database.from_url(f"postgresql://postgres@127.0.0.1:{free_port()}/nope")
    app = create_app(settings, database=dead, redis=redis_client)
    async with make_client(app) as c:
        r = await c.get("/health/ready")
    await dead.dispose()
    assert r.status_code == 503
    assert r.headers["Retry-After"] == "1"
    err = r.json()["error"]
    assert err["code"] == "service_unavailable"
    assert [d["check"] for d in err["details"]] == ["database"]
    assert err["request_id"] == r.headers["X-Request-ID"]


async def test_ready_is_503_naming_redis_when_it_is_down(
    settings: Settings, db_engine: object
) -> None:
    from sqlalchemy.ext.asyncio import AsyncEngine

    assert isinstance(db_engine, AsyncEngine)
    dead_redis = make_redis(
        settings.model_copy(update={"redis_url": f"redis://127.0.0.1:{free_port()}/0"})
    )
    app = create_app(settings, database=Database(db_engine), redis=dead_redis)
    async with make_client(app) as c:
        r = await c.get("/health/ready")
    await dead_redis.aclose()
    assert r.status_code == 503
    assert [d["check"] for d in r.json()["error"]["details"]] == ["redis"]


@pytest.mark.slow  # an outage: connecting to a closed port, with the retry policy's backoff
async def test_api_answers_503_not_500_while_the_database_is_down(
    settings: Settings, redis_client: Redis
) -> None:
    dead = Database.from_url(f"postgresql://postgres@127.0.0.1:{free_port()}/nope")
    app = create_app(settings, database=dead, redis=redis_client)
    async with make_client(app, raise_app_exceptions=False) as c:
        r = await c.get("/api/v1/items")
    await dead.dispose()
    assert r.status_code == 503, r.text
    assert r.json()["error"]["code"] == "service_unavailable"
