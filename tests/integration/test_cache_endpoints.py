"""Cached endpoints on real Redis (guide: "Redis Caching", "Caching Pitfalls", "User
Management Flow"): fresh after writes, never shared between users, alive without Redis."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from fastapi import FastAPI
from httpx import AsyncClient
from prometheus_client import REGISTRY
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from patterns.cache import Cache
from patterns.db import Database
from patterns.db.queries import count_queries
from patterns.testing import make_client
from patterns.testing.backends import free_port
from reference_app.core import warmup
from reference_app.core.config import Settings
from reference_app.core.redis import make_redis
from reference_app.crud.activity import activities
from reference_app.main import create_app
from reference_app.models.profile import UserPreferences
from reference_app.schemas.user import UserResponse
from reference_app.services.users import RECENT_ACTIVITY, load_profile, load_profiles
from tests.factories import ItemFactory, UserFactory
from tests.integration.conftest import Account, AccountFactory, run_kit

PROFILE = "/api/v1/users/profile"
FEATURED = "/api/v1/items/featured"


def _count(name: str, namespace: str) -> float:
    return REGISTRY.get_sample_value(name, {"namespace": namespace}) or 0.0


async def test_profile_shows_the_user_activity_and_preferences(
    client: AsyncClient, account: Account
) -> None:
    await client.post(
        "/api/v1/auth/login", data={"username": account.user.email, "password": account.password}
    )
    r = await client.get(PROFILE, headers=account.headers)
    assert r.status_code == 200
    body = r.json()
    assert body["user"]["id"] == account.user.id
    assert [a["kind"] for a in body["recent_activity"]] == ["login"]
    assert body["preferences"] == {"theme": "light", "language": "en", "email_notifications": True}


async def test_profile_update_is_visible_on_the_next_read(
    client: AsyncClient, account: Account
) -> None:
    hits_before = _count("cache_hits_total", "users.profile")
    first = (await client.get(PROFILE, headers=account.headers)).json()
    again = (await client.get(PROFILE, headers=account.headers)).json()
    assert again == first
    assert _count("cache_hits_total", "users.profile") == hits_before + 1
    await client.patch("/api/v1/users/me", headers=account.headers, json={"full_name": "Renamed"})
    assert (await client.get(PROFILE, headers=account.headers)).json()["user"][
        "full_name"
    ] == "Renamed"
    await client.patch(
        "/api/v1/users/me/preferences", headers=account.headers, json={"theme": "dark"}
    )
    prefs = (await client.get(PROFILE, headers=account.headers)).json()["preferences"]
    assert prefs["theme"] == "dark"


async def test_user_a_never_receives_user_bs_cached_profile(
    client: AsyncClient, make_account: AccountFactory
) -> None:
    a, b = await make_account(), await make_account()
    profile_a = (await client.get(PROFILE, headers=a.headers)).json()
    profile_b = (await client.get(PROFILE, headers=b.headers)).json()
    assert profile_a["user"]["id"] == a.user.id
    assert profile_b["user"]["id"] == b.user.id
    # Served from the cache now, still each their own.
    assert (await client.get(PROFILE, headers=b.headers)).json()["user"]["id"] == b.user.id
    assert (await client.get(PROFILE, headers=a.headers)).json()["user"]["id"] == a.user.id


async def test_featured_is_served_from_cache_and_fresh_after_a_write(
    client: AsyncClient, account: Account, db_session: AsyncSession, assert_num_queries: Any
) -> None:
    item = await ItemFactory.create_async(
        db_session, title="Star", category="x", price=Decimal("1.00"), owner_id=account.user.id
    )
    await db_session.commit()
    assert (await client.get(FEATURED)).json() == []
    with assert_num_queries(0):  # a hit touches no database
        assert (await client.get(FEATURED)).json() == []
    r = await client.patch(
        f"/api/v1/items/{item.id}", headers=account.headers, json={"is_featured": True}
    )
    assert r.status_code == 200
    featured = (await client.get(FEATURED)).json()
    assert [i["id"] for i in featured] == [item.id]


async def test_reads_answer_200_with_redis_stopped(
    settings: Settings,
    db_engine: AsyncEngine,
    redis_client: Redis,
    app: FastAPI,
    account: Account,
    db_session: AsyncSession,
) -> None:
    # The app's own client configuration, pointed at a port nothing listens on.
    dead = make_redis(
        settings.model_copy(update={"redis_url": f"redis://127.0.0.1:{free_port()}/0"})
    )
    degraded = create_app(settings, database=Database(db_engine), redis=dead)
    degraded.dependency_overrides = app.dependency_overrides  # the test's session
    async with make_client(degraded, db_session) as c:
        assert (await c.get(FEATURED)).status_code == 200
        r = await c.get(PROFILE, headers=account.headers)
        assert r.status_code == 200, r.text
        assert r.json()["user"]["id"] == account.user.id
        assert (await c.get("/api/v1/items")).status_code == 200
        assert (await c.get("/health/ready")).status_code == 503
    await dead.aclose()


@pytest.mark.slow  # runs the CLI in a new process
async def test_warm_cache_command_stores_featured_and_profiles(
    database_url: str, redis_url: str, committed_db: Any, redis_client: Redis
) -> None:
    async with committed_db() as s:
        for i in range(3):
            await UserFactory.create_async(s, email=f"w{i}@example.com")
        await s.commit()
    env = {"KIT_DATABASE_URL": database_url, "KIT_REDIS_URL": redis_url}
    done = await run_kit("warm-cache", "--profiles", "2", env=env)
    assert done.returncode == 0, done.stderr
    assert "3 entries stored, 0 failed" in done.stdout
    assert len(await redis_client.keys("kit:users.profile:*")) == 2
    assert len(await redis_client.keys("kit:items.featured:*")) == 1


async def test_warming_many_profiles_reads_them_in_two_statements_as_the_endpoint_builds_them(
    db_engine: AsyncEngine, db_session: AsyncSession
) -> None:
    """The warm-up builds N profiles with two statements, not two per user, and each is the
    profile the endpoint builds: the newest activities first (ties on the time broken by id),
    at most RECENT_ACTIVITY of them, the user's preferences or the defaults."""
    people = [
        await UserFactory.create_async(db_session, email=f"p{i}@example.com") for i in range(4)
    ]
    busy, tuned, quiet, other = people
    for n in range(RECENT_ACTIVITY + 3):  # one transaction: every created_at is the same
        activities.record(db_session, busy.id, "login", f"#{n}")
    activities.record(db_session, tuned.id, "login", "once")
    activities.record(db_session, other.id, "login", "other")
    db_session.add(UserPreferences(user_id=tuned.id, theme="dark"))
    await db_session.flush()
    asked = [UserResponse.model_validate(u) for u in (busy, tuned, quiet)]

    with count_queries(db_engine) as counter:
        built = await load_profiles(db_session, asked)
    assert counter.count == 2, counter.report()
    for user in asked:
        assert built[user.id] == await load_profile(db_session, user)
    assert [a.detail for a in built[busy.id].recent_activity] == ["#7", "#6", "#5", "#4", "#3"]
    assert built[tuned.id].preferences.theme == "dark"
    assert built[quiet.id].recent_activity == []
    assert set(built) == {busy.id, tuned.id, quiet.id}


@pytest.mark.parametrize("together", [True, False], ids=["in-batches", "read-together-fails"])
async def test_warming_stores_every_profile_in_batches_and_survives_a_failed_batch_read(
    db_engine: AsyncEngine,
    committed_db: async_sessionmaker[AsyncSession],
    redis_client: Redis,
    monkeypatch: pytest.MonkeyPatch,
    together: bool,
) -> None:
    async with committed_db() as s:
        for i in range(5):
            await UserFactory.create_async(s, email=f"b{i}@example.com")
        await s.commit()
    monkeypatch.setattr(warmup, "PROFILE_BATCH", 2)  # 5 users: batches of 2, 2 and 1
    if not together:

        async def broken(*_args: object) -> None:
            raise RuntimeError("the batch's read failed")

        monkeypatch.setattr(warmup, "load_profiles", broken)
    cache = Cache(redis_client)
    report = await warmup.warm(Database(db_engine), cache, profiles=5)
    assert (report.warmed, report.failed) == (6, 0)  # featured and the five profiles
    assert len(await redis_client.keys(f"{cache.prefix}:users.profile:*")) == 5


async def test_a_featured_memory_hit_is_timed_counted_and_logged_like_any_request(
    client: AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    labels = {"method": "GET", "endpoint": FEATURED, "status": "200"}

    def timed() -> float:
        return REGISTRY.get_sample_value("http_request_duration_seconds_count", labels) or 0.0

    first = await client.get(FEATURED)  # computed, and stored in the memory tier
    hits, before = _count("cache_hits_total", "items.featured"), timed()
    with caplog.at_level("INFO", logger="patterns.observability.access"):
        hit = await client.get(FEATURED, headers={"X-Request-ID": "edge-hit-1"})
    assert hit.status_code == 200
    assert hit.content == first.content
    assert hit.headers["content-type"] == "application/json"
    assert hit.headers["X-Request-ID"] == "edge-hit-1"
    assert _count("cache_hits_total", "items.featured") == hits + 1
    assert timed() == before + 1
    access = [r.getMessage() for r in caplog.records if r.name == "patterns.observability.access"]
    assert [line for line in access if "edge-hit-1" in line] == [access[-1]]


async def test_a_profile_hit_is_timed_counted_and_logged_like_any_request(
    client: AsyncClient, make_account: AccountFactory, caplog: pytest.LogCaptureFixture
) -> None:
    """Answered before routing (`PrincipalHitMiddleware`), inside the observability middleware."""
    account = await make_account()
    labels = {"method": "GET", "endpoint": PROFILE, "status": "200"}

    def timed() -> float:
        return REGISTRY.get_sample_value("http_request_duration_seconds_count", labels) or 0.0

    first = await client.get(PROFILE, headers=account.headers)  # computed, stored in Redis
    hits, before = _count("cache_hits_total", "users.profile"), timed()
    with caplog.at_level("INFO", logger="patterns.observability.access"):
        hit = await client.get(PROFILE, headers={**account.headers, "X-Request-ID": "edge-hit-2"})
    assert hit.status_code == 200
    assert hit.content == first.content
    assert hit.headers["content-type"] == "application/json"
    assert hit.headers["X-Request-ID"] == "edge-hit-2"
    assert _count("cache_hits_total", "users.profile") == hits + 1
    assert timed() == before + 1  # by its route template
    access = [r.getMessage() for r in caplog.records if r.name == "patterns.observability.access"]
    assert [line for line in access if "edge-hit-2" in line] == [access[-1]]
