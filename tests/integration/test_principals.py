"""The authenticated user's snapshot in Redis (`patterns.security.principals`): cached reads
need no database, and every change to the user through the app takes effect on the next
request, in any worker. On real PostgreSQL and Redis."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import pytest
from fastapi import FastAPI
from httpx import AsyncClient
from redis.asyncio import Redis
from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from patterns.db import Database
from patterns.security import TokenType
from patterns.testing import make_client
from reference_app.core.config import Settings
from reference_app.main import create_app
from reference_app.models.user import Role, User
from reference_app.schemas.user import Principal
from tests.factories import UserFactory
from tests.integration.conftest import (
    ADMIN_USERS,
    Account,
    AccountFactory,
    admin_update,
    app_on_session,
)

ME = "/api/v1/users/me"
PROFILE = "/api/v1/users/profile"


def _snapshot_key(app: FastAPI, account: Account) -> str:
    key: str = app.state.kit.redis.principals.key(str(account.user.id))
    return key


async def test_a_cached_read_after_the_first_request_runs_no_sql(
    client: AsyncClient, account: Account, assert_num_queries: Any
) -> None:
    assert (await client.get(PROFILE, headers=account.headers)).status_code == 200
    with assert_num_queries(0):
        r = await client.get(PROFILE, headers=account.headers)
    assert r.status_code == 200
    assert r.json()["user"]["email"] == account.user.email


async def test_the_snapshot_lives_at_most_the_configured_ttl(
    app: FastAPI, client: AsyncClient, account: Account, redis_client: Redis
) -> None:
    assert (await client.get(ME, headers=account.headers)).status_code == 200
    ttl = await redis_client.ttl(_snapshot_key(app, account))
    assert 0 < ttl <= app.state.kit.settings.auth_principal_ttl_s


async def test_deactivation_by_an_admin_refuses_the_users_next_request(
    client: AsyncClient, make_account: AccountFactory
) -> None:
    user, admin = await make_account(), await make_account(Role.ADMIN)
    assert (await client.get(ME, headers=user.headers)).status_code == 200  # snapshot cached
    r = await admin_update(client, admin, user.user.id, is_active=False)
    assert r.status_code == 200, r.text
    assert r.json()["is_active"] is False
    r = await client.get(ME, headers=user.headers)
    assert r.status_code == 401
    assert r.json()["error"]["code"] == "user_inactive"
    r = await admin_update(client, admin, user.user.id, is_active=True)
    assert r.status_code == 200
    assert (await client.get(ME, headers=user.headers)).status_code == 200


async def test_a_role_change_applies_to_the_users_next_request(
    client: AsyncClient, make_account: AccountFactory
) -> None:
    user, admin = await make_account(), await make_account(Role.ADMIN)
    assert (await client.get(ADMIN_USERS, headers=user.headers)).status_code == 403
    r = await admin_update(client, admin, user.user.id, role="admin")
    assert r.status_code == 200, r.text
    assert (await client.get(ADMIN_USERS, headers=user.headers)).status_code == 200
    assert (await client.get(ME, headers=user.headers)).json()["role"] == "admin"


async def test_a_users_own_name_change_shows_in_the_next_read(
    client: AsyncClient, account: Account
) -> None:
    assert (await client.get(ME, headers=account.headers)).json()["full_name"] == "Test User"
    r = await client.patch(ME, headers=account.headers, json={"full_name": "Renamed"})
    assert r.status_code == 200
    assert (await client.get(ME, headers=account.headers)).json()["full_name"] == "Renamed"


@pytest.mark.parametrize("body", [{"is_active": False}, {"role": "user"}, {"role": "manager"}])
async def test_an_admin_cannot_deactivate_or_demote_themselves(
    client: AsyncClient, make_account: AccountFactory, body: dict[str, Any]
) -> None:
    admin = await make_account(Role.ADMIN)
    r = await admin_update(client, admin, admin.user.id, **body)
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
    r = await admin_update(client, admin, user.user.id, **body)
    assert r.status_code == status, r.text
    me = (await client.get(ME, headers=user.headers)).json()
    assert (me["role"], me["is_active"]) == ("user", True)


async def test_admin_update_of_an_unknown_user_is_404(
    client: AsyncClient, make_account: AccountFactory
) -> None:
    admin = await make_account(Role.ADMIN)
    r = await admin_update(client, admin, 2147483647)
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "user_not_found"


async def test_a_snapshot_that_no_longer_parses_is_ignored(
    app: FastAPI, client: AsyncClient, account: Account, redis_client: Redis
) -> None:
    key = _snapshot_key(app, account)
    await redis_client.set(key, b'{"id": "not a snapshot"', ex=60)
    r = await client.get(ME, headers=account.headers)
    assert r.status_code == 200  # the database answered
    assert r.json()["email"] == account.user.email


async def test_a_snapshot_cached_before_credentials_version_existed_is_read_again(
    app: FastAPI,
    client: AsyncClient,
    account: Account,
    db_session: AsyncSession,
    redis_client: Redis,
) -> None:
    """Such a snapshot must not pass as version 0 after the user changed their password."""
    old_shape = Principal.model_validate(await db_session.get(User, account.user.id)).model_dump(
        mode="json", exclude={"credentials_version"}
    )
    await redis_client.set(
        _snapshot_key(app, account), json.dumps(old_shape | {"full_name": "Old Shape"}), ex=60
    )
    r = await client.get(ME, headers=account.headers)
    assert r.status_code == 200
    assert r.json()["full_name"] == "Test User"  # the database answered


async def test_a_token_from_before_a_password_change_is_refused_by_the_cached_snapshot(
    app: FastAPI,
    client: AsyncClient,
    account: Account,
    redis_client: Redis,
    assert_num_queries: Any,
) -> None:
    r = await client.patch(
        ME,
        headers=account.headers,
        json={"password": "brand-new-pass", "current_password": account.password},
    )
    assert r.status_code == 200
    key = _snapshot_key(app, account)
    assert await redis_client.get(key) == b"-"
    await redis_client.delete(key)  # the tombstone's 10 s are over
    r = await client.post(
        "/api/v1/auth/login", data={"username": account.user.email, "password": "brand-new-pass"}
    )
    fresh = {"Authorization": f"Bearer {r.json()['access_token']}"}
    assert (await client.get(ME, headers=fresh)).status_code == 200  # caches the new snapshot
    snapshot = await redis_client.get(key)
    assert snapshot is not None
    assert json.loads(snapshot)["credentials_version"] == 1
    with assert_num_queries(0):
        r = await client.get(ME, headers=account.headers)
    assert r.status_code == 401
    assert r.json()["error"]["code"] == "credentials_changed"


async def test_a_token_for_credentials_the_database_does_not_know_is_refused(
    app: FastAPI, client: AsyncClient, account: Account
) -> None:
    """A version ahead of the user's (the database restored from an older backup after a
    password change): the token was issued for a password the database no longer has."""
    token, _ = app.state.kit.tokens.create(account.user.id, TokenType.ACCESS, version=1)
    r = await client.get(ME, headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 401
    assert r.json()["error"]["code"] == "credentials_changed"


async def test_a_write_checks_the_credentials_version_in_the_database_not_the_snapshot(
    client: AsyncClient, account: Account, db_session: AsyncSession
) -> None:
    """A password changed behind the app's back (bulk SQL: no snapshot dropped) refuses the
    old token's writes at once; its reads, served from the snapshot, within the TTL."""
    assert (await client.get(ME, headers=account.headers)).status_code == 200  # snapshot cached
    await db_session.execute(
        update(User).where(User.id == account.user.id).values(credentials_version=1)
    )
    r = await client.patch(ME, headers=account.headers, json={"full_name": "Not Me"})
    assert r.status_code == 401
    assert r.json()["error"]["code"] == "credentials_changed"


# --- Redis unreachable: the database answers who the user is; the revocation policy applies --


@pytest.mark.parametrize(("fail_open", "status"), [(True, 200), (False, 503)])
async def test_with_redis_down_the_revocation_policy_decides_for_me_and_the_profile(
    settings: Settings,
    db_engine: AsyncEngine,
    db_session: AsyncSession,
    dead_redis: Redis,
    make_account: AccountFactory,
    fail_open: bool,
    status: int,
) -> None:
    account = await make_account()  # its token is signed with the same settings' secret
    down = app_on_session(
        settings.model_copy(update={"auth_revocation_fail_open": fail_open}),
        db_engine,
        db_session,
        dead_redis,
    )
    async with make_client(down, db_session) as c:
        r = await c.get(ME, headers=account.headers)
        # The cached profile, answered before routing when Redis answers, falls through to its
        # endpoint and gets the same answer.
        profile = await c.get(f"{settings.api_v1_prefix}/users/profile", headers=account.headers)
    assert r.status_code == profile.status_code == status, r.text
    if status == 200:
        assert r.json()["email"] == account.user.email
        assert profile.json()["user"]["email"] == account.user.email
    else:
        assert profile.json()["error"]["code"] == r.json()["error"]["code"]


async def test_a_redis_outage_warns_once_not_once_per_request(
    settings: Settings,
    db_engine: AsyncEngine,
    db_session: AsyncSession,
    dead_redis: Redis,
    account: Account,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The revocation check's fail-open warning comes from one list per app, on every path that
    checks (the current user, and logout's own check), so an outage logs a line per interval."""
    down = app_on_session(settings, db_engine, db_session, dead_redis)
    with caplog.at_level(logging.WARNING, logger="patterns.security.revocation"):
        async with make_client(down, db_session) as c:
            for _ in range(3):
                assert (await c.get(ME, headers=account.headers)).status_code == 200
                r = await c.post("/api/v1/auth/logout", headers=account.headers)
                assert r.status_code == 503  # recording a revocation fails closed
    assert caplog.text.count("revocation check skipped") == 1


async def test_a_snapshot_read_before_a_change_cannot_be_stored_after_it(
    app: FastAPI,
    client: AsyncClient,
    make_account: AccountFactory,
    db_session: AsyncSession,
) -> None:
    """The race a plain delete would lose: a request reads the row (active), the admin's
    change commits and drops the snapshot, then the request stores what it read."""
    user, admin = await make_account(), await make_account(Role.ADMIN)
    principals = app.state.kit.redis.principals
    stale = Principal.model_validate(await db_session.get(User, user.user.id))  # read: active
    r = await admin_update(client, admin, user.user.id, is_active=False)
    assert r.status_code == 200
    await principals.store(str(user.user.id), stale)  # too late: the tombstone wins
    r = await client.get(ME, headers=user.headers)
    assert r.status_code == 401
    assert r.json()["error"]["code"] == "user_inactive"


async def test_the_tombstone_is_short_lived(
    app: FastAPI, client: AsyncClient, make_account: AccountFactory, redis_client: Redis
) -> None:
    user, admin = await make_account(), await make_account(Role.ADMIN)
    await client.get(ME, headers=user.headers)
    r = await admin_update(client, admin, user.user.id, role="manager")
    assert r.status_code == 200
    key = _snapshot_key(app, user)
    assert await redis_client.get(key) == b"-"
    assert 0 < await redis_client.ttl(key) <= 10
    assert (await client.get(ME, headers=user.headers)).status_code == 200  # from the database


async def test_an_admin_change_shows_in_the_users_cached_profile(
    client: AsyncClient, make_account: AccountFactory
) -> None:
    user, admin = await make_account(), await make_account(Role.ADMIN)
    assert (await client.get(PROFILE, headers=user.headers)).json()["user"]["role"] == "user"
    r = await admin_update(client, admin, user.user.id, role="manager")
    assert r.status_code == 200
    assert (await client.get(PROFILE, headers=user.headers)).json()["user"]["role"] == "manager"


@pytest.mark.parametrize(
    ("body", "refused_late"),
    [({"role": "user"}, 403), ({"is_active": False}, 401)],
    ids=["demote", "deactivate"],
)
async def test_two_admins_removing_each_other_at_once_leave_one_admin(
    settings: Settings,
    db_engine: AsyncEngine,
    redis_client: Redis,
    committed_db: async_sessionmaker[AsyncSession],
    body: dict[str, Any],
    refused_late: int,
) -> None:
    live = create_app(settings, database=Database(db_engine), redis=redis_client)
    async with committed_db() as s:
        first, second = await UserFactory.create_batch_async(s, 2, role=Role.ADMIN)
        await s.commit()
    headers = {
        u.id: {"Authorization": f"Bearer {live.state.kit.tokens.create(u.id, TokenType.ACCESS)[0]}"}
        for u in (first, second)
    }
    async with make_client(live, raise_app_exceptions=False) as c:
        results = await asyncio.gather(
            c.patch(f"{ADMIN_USERS}/{second.id}", headers=headers[first.id], json=body),
            c.patch(f"{ADMIN_USERS}/{first.id}", headers=headers[second.id], json=body),
        )
    # One wins. The other is refused: 409 when it passed authentication before the winner
    # committed (the last-admin check, under the row locks); else by authentication itself,
    # as a demoted admin (403) or a deactivated user (401 user_inactive).
    codes = sorted(r.status_code for r in results)
    assert codes in ([200, 409], sorted([200, refused_late])), [r.json() for r in results]
    refusal = next(r.json()["error"]["code"] for r in results if r.status_code != 200)
    assert refusal in {"last_admin", "forbidden", "user_inactive"}
    async with committed_db() as s:
        admins = await s.scalars(
            select(User.id).where(User.role == "admin", User.is_active.is_(True))
        )
        assert len(admins.all()) == 1


async def test_a_write_for_a_user_deleted_by_hand_is_401_not_500(
    client: AsyncClient, account: Account, db_session: AsyncSession
) -> None:
    """Deleted with SQL (no ORM event: the snapshot stays for its TTL); the write's foreign key
    to users fails, and that is the user being gone."""
    assert (await client.get(ME, headers=account.headers)).status_code == 200  # snapshot cached
    await db_session.execute(delete(User).where(User.id == account.user.id))
    r = await client.post(
        "/api/v1/items",
        headers=account.headers,
        json={"title": "Lamp", "category": "home", "price": "9.99"},
    )
    assert r.status_code == 401, r.text
    assert r.json()["error"]["code"] == "user_not_found"
