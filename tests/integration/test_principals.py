"""The authenticated user's snapshot in Redis (`patterns.security.principals`): cached reads
need no database, and every change to the user through the app takes effect on the next
request, in any worker. On real PostgreSQL and Redis."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from fastapi import FastAPI
from httpx import AsyncClient
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from patterns.db import Database
from patterns.db.session import commit, rollback
from patterns.testing import make_client
from patterns.testing.backends import free_port
from reference_app.core.config import Settings
from reference_app.core.db import get_db
from reference_app.core.redis import make_redis
from reference_app.main import create_app
from reference_app.models.user import Role
from tests.integration.conftest import Account, AccountFactory

ME = "/api/v1/users/me"
PROFILE = "/api/v1/users/profile"
ADMIN_USERS = "/api/v1/admin/users"


def _snapshot_key(app: FastAPI, account: Account) -> str:
    key: str = app.state.principals.key(str(account.user.id))
    return key


async def test_a_cached_read_after_the_first_request_runs_no_sql(
    client: AsyncClient, make_account: AccountFactory, assert_num_queries: Any
) -> None:
    account = await make_account()
    assert (await client.get(PROFILE, headers=account.headers)).status_code == 200
    with assert_num_queries(0):
        r = await client.get(PROFILE, headers=account.headers)
    assert r.status_code == 200
    assert r.json()["user"]["email"] == account.user.email


async def test_the_snapshot_lives_at_most_the_configured_ttl(
    app: FastAPI, client: AsyncClient, make_account: AccountFactory, redis_client: Redis
) -> None:
    account = await make_account()
    assert (await client.get(ME, headers=account.headers)).status_code == 200
    ttl = await redis_client.ttl(_snapshot_key(app, account))
    assert 0 < ttl <= app.state.settings.auth_principal_ttl_s


async def test_deactivation_by_an_admin_refuses_the_users_next_request(
    client: AsyncClient, make_account: AccountFactory
) -> None:
    user, admin = await make_account(), await make_account(Role.ADMIN)
    assert (await client.get(ME, headers=user.headers)).status_code == 200  # snapshot cached
    r = await client.patch(
        f"{ADMIN_USERS}/{user.user.id}", headers=admin.headers, json={"is_active": False}
    )
    assert r.status_code == 200, r.text
    assert r.json()["is_active"] is False
    r = await client.get(ME, headers=user.headers)
    assert r.status_code == 401
    assert r.json()["error"]["code"] == "user_inactive"
    r = await client.patch(
        f"{ADMIN_USERS}/{user.user.id}", headers=admin.headers, json={"is_active": True}
    )
    assert r.status_code == 200
    assert (await client.get(ME, headers=user.headers)).status_code == 200


async def test_a_role_change_applies_to_the_users_next_request(
    client: AsyncClient, make_account: AccountFactory
) -> None:
    user, admin = await make_account(), await make_account(Role.ADMIN)
    assert (await client.get(ADMIN_USERS, headers=user.headers)).status_code == 403
    r = await client.patch(
        f"{ADMIN_USERS}/{user.user.id}", headers=admin.headers, json={"role": "admin"}
    )
    assert r.status_code == 200, r.text
    assert (await client.get(ADMIN_USERS, headers=user.headers)).status_code == 200
    assert (await client.get(ME, headers=user.headers)).json()["role"] == "admin"


async def test_a_users_own_name_change_shows_in_the_next_read(
    client: AsyncClient, make_account: AccountFactory
) -> None:
    account = await make_account()
    assert (await client.get(ME, headers=account.headers)).json()["full_name"] == "Test User"
    r = await client.patch(ME, headers=account.headers, json={"full_name": "Renamed"})
    assert r.status_code == 200
    assert (await client.get(ME, headers=account.headers)).json()["full_name"] == "Renamed"


@pytest.mark.parametrize("body", [{"is_active": False}, {"role": "user"}, {"role": "manager"}])
async def test_an_admin_cannot_deactivate_or_demote_themselves(
    client: AsyncClient, make_account: AccountFactory, body: dict[str, Any]
) -> None:
    admin = await make_account(Role.ADMIN)
    r = await client.patch(f"{ADMIN_USERS}/{admin.user.id}", headers=admin.headers, json=body)
    assert r.status_code == 409
    assert r.json()["error"]["code"] == "self_lockout"
    me = (await client.get(ME, headers=admin.headers)).json()
    assert (me["role"], me["is_active"]) == ("admin", True)


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"is_active": "no"}, 422),
        ({"role": "owner"}, 422),
        ({"email": "x@example.com"}, 422),
        ({"is_active": None}, 200),
    ],
)
async def test_admin_update_validates_its_body(
    client: AsyncClient, make_account: AccountFactory, body: dict[str, Any], status: int
) -> None:
    user, admin = await make_account(), await make_account(Role.ADMIN)
    r = await client.patch(f"{ADMIN_USERS}/{user.user.id}", headers=admin.headers, json=body)
    assert r.status_code == status, r.text
    me = (await client.get(ME, headers=user.headers)).json()
    assert (me["role"], me["is_active"]) == ("user", True)


async def test_admin_update_of_an_unknown_user_is_404(
    client: AsyncClient, make_account: AccountFactory
) -> None:
    admin = await make_account(Role.ADMIN)
    r = await client.patch(f"{ADMIN_USERS}/2147483647", headers=admin.headers, json={})
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "user_not_found"


async def test_a_snapshot_that_no_longer_parses_is_read_again_from_the_database(
    app: FastAPI, client: AsyncClient, make_account: AccountFactory, redis_client: Redis
) -> None:
    account = await make_account()
    key = _snapshot_key(app, account)
    await redis_client.set(key, b'{"id": "not a snapshot"', ex=60)
    assert (await client.get(ME, headers=account.headers)).status_code == 200
    stored = await redis_client.get(key)
    assert stored is not None
    assert b'"email"' in stored


# --- Redis unreachable: the database answers who the user is; the revocation policy applies --


def _app_on_dead_redis(
    settings: Settings, db_engine: AsyncEngine, db_session: AsyncSession, redis: Redis
) -> FastAPI:
    application = create_app(settings, database=Database(db_engine), redis=redis)

    async def _test_db() -> AsyncIterator[AsyncSession]:
        try:
            yield db_session
        except BaseException:
            await rollback(db_session)
            raise
        await commit(db_session)

    application.dependency_overrides[get_db] = _test_db
    return application


@pytest.fixture
async def dead_redis() -> AsyncIterator[Redis]:
    client = make_redis(Settings(redis_url=f"redis://127.0.0.1:{free_port()}/0"))
    yield client
    await client.aclose()


@pytest.mark.parametrize(("fail_open", "status"), [(True, 200), (False, 503)])
async def test_with_redis_down_the_revocation_policy_decides(
    settings: Settings,
    db_engine: AsyncEngine,
    db_session: AsyncSession,
    dead_redis: Redis,
    make_account: AccountFactory,
    fail_open: bool,
    status: int,
) -> None:
    account = await make_account()  # its token is signed with the same settings' secret
    down = _app_on_dead_redis(
        settings.model_copy(update={"auth_revocation_fail_open": fail_open}),
        db_engine,
        db_session,
        dead_redis,
    )
    async with make_client(down, db_session) as c:
        r = await c.get(ME, headers=account.headers)
    assert r.status_code == status, r.text
    if status == 200:
        assert r.json()["email"] == account.user.email
