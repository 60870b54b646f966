"""The cached profile answered before routing (`patterns.cache.edge.PrincipalHitMiddleware`):
only to a request the endpoint would answer with those bytes, on real PostgreSQL and Redis. A
logout, a deactivation, a new password or a role change takes effect on the next request even
when the profile is still cached; a forged token never gets it. A Redis outage, answered as the
endpoint answers it, is checked beside `/users/me` in `test_principals.py`."""

from __future__ import annotations

import json

import pytest
from fastapi import FastAPI
from httpx import AsyncClient, Response
from redis.asyncio import Redis

from patterns.errors import AuthenticationError
from reference_app.core.cache import PROFILE as PROFILE_SPEC
from reference_app.core.config import Settings
from reference_app.core.deps import get_current_user
from reference_app.models.user import Role
from tests.integration.conftest import Account, AccountFactory, admin_update
from tests.integration.test_token_attacks import ATTACKS, Attack

PROFILE = "/api/v1/users/profile"
ME = "/api/v1/users/me"


def _profile_key(app: FastAPI, account: Account) -> str:
    key: str = app.state.kit.redis.cache.key(PROFILE_SPEC, principal=account.user.id)
    return key


async def _cached_profile(
    app: FastAPI, client: AsyncClient, redis_client: Redis, account: Account
) -> Response:
    """The account's profile, read once so that Redis holds it."""
    r = await client.get(PROFILE, headers=account.headers)
    assert r.status_code == 200, r.text
    assert await redis_client.get(_profile_key(app, account)) == r.content
    return r


async def _put_back(app: FastAPI, redis_client: Redis, account: Account, body: bytes) -> None:
    """Store a profile as a read that loaded it before a change and stored it after the
    change's invalidation would (the cache's known race): only the checks stand in the way."""
    await redis_client.set(_profile_key(app, account), body, ex=60)


async def _snapshot_after_the_tombstone(
    app: FastAPI, client: AsyncClient, redis_client: Redis, account: Account
) -> dict[str, object]:
    """As the first request after the tombstone's few seconds: the snapshot read from the
    database is cached again (the request's own answer is the caller's to check)."""
    key = app.state.kit.redis.principals.key(str(account.user.id))
    await redis_client.delete(key)
    await client.get(ME, headers=account.headers)
    raw = await redis_client.get(key)
    assert raw is not None
    snapshot: dict[str, object] = json.loads(raw)
    return snapshot


def _refused(r: Response, code: str) -> None:
    assert r.status_code == 401, r.text
    assert r.json()["error"]["code"] == code
    assert r.headers["WWW-Authenticate"] == "Bearer"


async def _refused_with_a_stale_profile(
    app: FastAPI,
    client: AsyncClient,
    redis_client: Redis,
    account: Account,
    stale: bytes,
    code: str,
) -> dict[str, object]:
    """With the stale profile put back in Redis, the profile is refused with `code`: on the
    tombstone, then on the rebuilt snapshot (returned) while the stale entry is still there."""
    await _put_back(app, redis_client, account, stale)
    _refused(await client.get(PROFILE, headers=account.headers), code)  # the tombstone
    snapshot = await _snapshot_after_the_tombstone(app, client, redis_client, account)
    assert await redis_client.exists(_profile_key(app, account))
    _refused(await client.get(PROFILE, headers=account.headers), code)
    return snapshot


async def test_a_hit_is_the_endpoints_answer_without_the_endpoint(
    app: FastAPI, client: AsyncClient, redis_client: Redis, make_account: AccountFactory
) -> None:
    account, other = await make_account(), await make_account()
    first = await _cached_profile(app, client, redis_client, account)

    async def no_dependencies() -> None:
        raise AuthenticationError("The endpoint was reached.", code="reached")

    app.dependency_overrides[get_current_user] = no_dependencies
    hit = await client.get(PROFILE, headers=account.headers)
    assert hit.status_code == 200
    assert hit.content == first.content
    # The same headers as the endpoint's answer (the request id aside, which is per request).
    assert {k: v for k, v in hit.headers.items() if k != "x-request-id"} == {
        k: v for k, v in first.headers.items() if k != "x-request-id"
    }
    # Nothing cached for this one: the endpoint answers.
    _refused(await client.get(PROFILE, headers=other.headers), "reached")


async def test_a_logout_refuses_the_token_at_once_though_the_profile_is_cached(
    app: FastAPI, client: AsyncClient, redis_client: Redis, make_account: AccountFactory
) -> None:
    account = await make_account()
    await _cached_profile(app, client, redis_client, account)
    assert (await client.post("/api/v1/auth/logout", headers=account.headers)).status_code == 204
    assert await redis_client.exists(_profile_key(app, account))
    _refused(await client.get(PROFILE, headers=account.headers), "token_revoked")


async def test_a_deactivated_user_is_refused_though_their_profile_is_cached(
    app: FastAPI, client: AsyncClient, redis_client: Redis, make_account: AccountFactory
) -> None:
    user, admin = await make_account(), await make_account(Role.ADMIN)
    cached = await _cached_profile(app, client, redis_client, user)
    r = await admin_update(client, admin, user.user.id, is_active=False)
    assert r.status_code == 200, r.text
    snapshot = await _refused_with_a_stale_profile(
        app, client, redis_client, user, cached.content, "user_inactive"
    )
    assert snapshot["is_active"] is False


async def test_a_role_change_shows_in_the_next_profile(
    app: FastAPI, client: AsyncClient, redis_client: Redis, make_account: AccountFactory
) -> None:
    user, admin = await make_account(), await make_account(Role.ADMIN)
    cached = await _cached_profile(app, client, redis_client, user)
    assert cached.json()["user"]["role"] == "user"
    r = await admin_update(client, admin, user.user.id, role="manager")
    assert r.status_code == 200, r.text
    for _ in range(2):  # rebuilt, then a hit
        r = await client.get(PROFILE, headers=user.headers)
        assert r.status_code == 200
        assert r.json()["user"]["role"] == "manager"


async def test_a_new_password_refuses_older_tokens_though_the_profile_is_cached(
    app: FastAPI, client: AsyncClient, redis_client: Redis, make_account: AccountFactory
) -> None:
    account = await make_account()
    cached = await _cached_profile(app, client, redis_client, account)
    r = await client.patch(
        ME,
        headers=account.headers,
        json={"password": "a-new-password-1", "current_password": account.password},
    )
    assert r.status_code == 200, r.text
    snapshot = await _refused_with_a_stale_profile(
        app, client, redis_client, account, cached.content, "credentials_changed"
    )
    assert snapshot["credentials_version"] == 1


@pytest.mark.parametrize("attack", ATTACKS, ids=lambda a: a.__name__)
async def test_a_forged_or_misused_token_never_gets_the_cached_profile(
    attack: Attack,
    app: FastAPI,
    settings: Settings,
    client: AsyncClient,
    redis_client: Redis,
    make_account: AccountFactory,
) -> None:
    account = await make_account()
    cached = await _cached_profile(app, client, redis_client, account)
    headers = {"Authorization": f"Bearer {await attack(app, settings, account, client)}"}
    r = await client.get(PROFILE, headers=headers)
    assert r.content != cached.content
    # The refusal the same token gets from any endpoint that needs the current user.
    _refused(r, (await client.get(ME, headers=headers)).json()["error"]["code"])
