"""Registration, login, refresh and logout on real PostgreSQL and Redis (guide: "Testing
Authentication Flow", "User Management Flow")."""

from __future__ import annotations

import asyncio

import bcrypt
import pytest
from fastapi import FastAPI
from httpx import AsyncClient, Response
from prometheus_client import REGISTRY
from redis.asyncio import Redis
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from patterns.db import Database
from patterns.testing import make_client
from reference_app.core.config import Settings
from reference_app.core.mail import RecordingMailBackend
from reference_app.main import create_app
from reference_app.models.user import Role, User
from tests.factories import UserFactory
from tests.integration.conftest import Account, AccountFactory, app_on_session

REGISTER = "/api/v1/auth/register"
LOGIN = "/api/v1/auth/login"
REFRESH = "/api/v1/auth/refresh"
LOGOUT = "/api/v1/auth/logout"
ME = "/api/v1/users/me"


def _assert_error(response: Response, status: int, code: str) -> None:
    """The response is the kit's error envelope with this status and code."""
    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == code


async def _users(session: AsyncSession) -> int:
    return int(await session.scalar(select(func.count()).select_from(User)) or 0)


def _registrations() -> float:
    return REGISTRY.get_sample_value("user_registrations_total") or 0.0


async def test_guide_login_flow_register_login_then_protected_endpoint(
    client: AsyncClient, mailer: RecordingMailBackend
) -> None:
    before = _registrations()
    r = await client.post(REGISTER, json={"email": "test@example.com", "password": "testpass123"})
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["email"] == "test@example.com"
    assert body["role"] == "user"
    assert "password" not in r.text
    assert "hashed" not in r.text

    r = await client.post(LOGIN, data={"username": "test@example.com", "password": "testpass123"})
    assert r.status_code == 200, r.text
    tokens = r.json()
    assert tokens["token_type"] == "bearer"
    assert tokens["expires_in"] == 30 * 60

    r = await client.get(
        "/api/v1/users/me", headers={"Authorization": f"Bearer {tokens['access_token']}"}
    )
    assert r.status_code == 200
    assert r.json()["email"] == "test@example.com"
    # The welcome email went out after the response, and the counter moved once.
    assert [m[0] for m in mailer.sent] == ["test@example.com"]
    assert _registrations() == before + 1


@pytest.mark.parametrize("variant", ["Dup@Example.com", "DUP@EXAMPLE.COM", "dup@example.com"])
async def test_duplicate_email_in_any_case_is_409_and_writes_nothing(
    client: AsyncClient, db_session: AsyncSession, variant: str
) -> None:
    r = await client.post(REGISTER, json={"email": "dup@example.com", "password": "password-1"})
    assert r.status_code == 201
    before = await _users(db_session)
    r = await client.post(REGISTER, json={"email": variant, "password": "password-2"})
    _assert_error(r, 409, "email_taken")
    assert await _users(db_session) == before


@pytest.mark.parametrize(
    "payload",
    [
        {},
        {"email": "not-an-email", "password": "password-1"},
        {"email": "a@example.com", "password": "short"},
        {"email": "a@example.com", "password": "x" * 129},
        {"email": "a@example.com", "password": "password-1", "role": "admin"},
        {"email": "a@example.com", "password": "password-1", "full_name": "nul\x00byte"},
        {"email": ["a@example.com"], "password": "password-1"},
        {"email": "a@example.com", "password": 12345678},
    ],
    ids=["empty", "bad-email", "short-pw", "long-pw", "role-escalation", "nul", "list", "int-pw"],
)
async def test_malformed_registration_is_422_in_the_envelope_and_writes_nothing(
    client: AsyncClient, db_session: AsyncSession, payload: dict[str, object]
) -> None:
    r = await client.post(REGISTER, json=payload)
    _assert_error(r, 422, "validation_error")
    assert await _users(db_session) == 0


async def test_wrong_password_and_unknown_email_get_the_same_401(
    client: AsyncClient, make_account: AccountFactory
) -> None:
    account = await make_account()
    wrong = await client.post(LOGIN, data={"username": account.user.email, "password": "nope-nope"})
    unknown = await client.post(LOGIN, data={"username": "ghost@example.com", "password": "x" * 9})
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json()["error"]["code"] == unknown.json()["error"]["code"] == "invalid_credentials"
    assert wrong.headers["WWW-Authenticate"] == "Bearer"


@pytest.mark.parametrize(
    "username", ["nul\x00@example.com", "\x00", "a@example.com\x00"], ids=["inside", "only", "end"]
)
async def test_login_with_a_nul_in_the_email_is_the_usual_401_not_a_500(
    client: AsyncClient, make_account: AccountFactory, username: str
) -> None:
    account = await make_account()
    r = await client.post(LOGIN, data={"username": username, "password": account.password})
    _assert_error(r, 401, "invalid_credentials")


async def test_login_email_is_case_insensitive(
    client: AsyncClient, make_account: AccountFactory
) -> None:
    account = await make_account()
    r = await client.post(
        LOGIN, data={"username": account.user.email.upper(), "password": account.password}
    )
    assert r.status_code == 200


async def test_inactive_user_cannot_log_in(
    client: AsyncClient, make_account: AccountFactory
) -> None:
    account = await make_account(active=False)
    r = await client.post(
        LOGIN, data={"username": account.user.email, "password": account.password}
    )
    _assert_error(r, 403, "user_inactive")


async def test_bcrypt_hash_still_verifies_and_is_upgraded_to_argon2_at_login(
    client: AsyncClient, db_session: AsyncSession
) -> None:
    legacy = bcrypt.hashpw(b"legacy-password", bcrypt.gensalt(rounds=4)).decode()
    user = await UserFactory.create_async(
        db_session, email="legacy@example.com", hashed_password=legacy
    )
    r = await client.post(
        LOGIN, data={"username": "legacy@example.com", "password": "legacy-password"}
    )
    assert r.status_code == 200
    stored = await db_session.scalar(select(User.hashed_password).where(User.id == user.id))
    assert stored is not None
    assert stored.startswith("$argon2id$")
    r = await client.post(
        LOGIN, data={"username": "legacy@example.com", "password": "legacy-password"}
    )
    assert r.status_code == 200


async def test_refresh_rotates_and_a_refresh_token_works_only_once(
    client: AsyncClient, make_account: AccountFactory
) -> None:
    account = await make_account()
    tokens = await _log_in(client, account)
    first = await _refresh(client, tokens["refresh_token"])
    assert first.status_code == 200
    new = first.json()
    assert new["refresh_token"] != tokens["refresh_token"]
    me = await client.get(ME, headers=_bearer(new))
    assert me.status_code == 200
    await _assert_refresh_refused(client, tokens, "token_revoked")


async def test_racing_refreshes_with_one_token_let_exactly_one_through(
    app: FastAPI, client: AsyncClient, make_account: AccountFactory
) -> None:
    account = await make_account()
    refresh, _ = app.state.kit.tokens.create(account.user.id, "refresh")
    # The session is shared by the test client, so race only the Redis step: the revocation
    # (SET NX) decides which use wins.
    from patterns.security import TokenType
    from patterns.security.revocation import RevocationList, Rotation

    claims = app.state.kit.tokens.decode(refresh, TokenType.REFRESH)
    revocations = RevocationList(app.state.kit.redis.client)
    results = await asyncio.gather(
        *(revocations.rotate(claims, grace_s=10, family_ttl_s=60) for _ in range(20))
    )
    assert results.count(Rotation.ROTATED) == 1
    assert results.count(Rotation.RACED) == 19  # a burst from one client: no family revoked


async def test_logout_revokes_access_and_refresh_tokens(
    client: AsyncClient, make_account: AccountFactory, app: FastAPI
) -> None:
    account = await make_account()
    tokens = await _log_in(client, account)
    headers = _bearer(tokens)
    r = await client.post(
        "/api/v1/auth/logout", headers=headers, json={"refresh_token": tokens["refresh_token"]}
    )
    assert r.status_code == 204
    r = await client.get("/api/v1/users/me", headers=headers)
    _assert_error(r, 401, "token_revoked")
    r = await client.post("/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert r.status_code == 401
    # Revocation lasts as long as the token would have lived, no longer.
    ttl = await app.state.kit.redis.client.ttl(
        f"auth:revoked:{app.state.kit.tokens.decode(tokens['access_token'], 'access').jti}"
    )
    assert 29 * 60 < ttl <= 30 * 60


async def test_update_me_changes_name_and_password_with_the_current_one(
    client: AsyncClient, make_account: AccountFactory
) -> None:
    account = await make_account()
    r = await client.patch("/api/v1/users/me", headers=account.headers, json={"full_name": "Ada L"})
    assert r.status_code == 200
    assert r.json()["full_name"] == "Ada L"
    r = await client.patch(
        "/api/v1/users/me", headers=account.headers, json={"password": "brand-new-pass"}
    )
    assert r.status_code == 422
    r = await client.patch(
        "/api/v1/users/me",
        headers=account.headers,
        json={"password": "brand-new-pass", "current_password": "wrong-one"},
    )
    assert r.status_code == 401
    r = await client.patch(
        "/api/v1/users/me",
        headers=account.headers,
        json={"password": "brand-new-pass", "current_password": account.password},
    )
    assert r.status_code == 200
    r = await client.post(
        LOGIN, data={"username": account.user.email, "password": "brand-new-pass"}
    )
    assert r.status_code == 200


async def test_admin_creates_a_manager(client: AsyncClient, make_account: AccountFactory) -> None:
    admin = await make_account(Role.ADMIN)
    r = await client.post(
        "/api/v1/users/",
        headers=admin.headers,
        json={"email": "Boss@Example.com", "password": "manager-pass", "role": "manager"},
    )
    assert r.status_code == 201, r.text
    assert r.json()["role"] == "manager"
    assert r.json()["email"] == "boss@example.com"


async def test_admin_lists_users_in_pages(
    client: AsyncClient, make_account: AccountFactory
) -> None:
    admin = await make_account(Role.ADMIN)
    for _ in range(4):
        await make_account()
    r = await client.get("/api/v1/admin/users", headers=admin.headers, params={"limit": 2})
    assert r.status_code == 200
    page = r.json()
    assert (page["total"], page["size"], page["pages"], len(page["items"])) == (5, 2, 3, 2)
    assert "hashed_password" not in r.text


async def test_a_body_over_the_limit_is_413_in_the_envelope_and_writes_nothing(
    client: AsyncClient, db_session: AsyncSession, settings: Settings
) -> None:
    huge = {"email": "big@example.com", "password": "x" * (settings.max_body_bytes + 1)}
    r = await client.post(REGISTER, json=huge)
    _assert_error(r, 413, "payload_too_large")
    assert await _users(db_session) == 0


async def test_concurrent_registrations_of_one_email_make_one_user_and_409s(
    settings: Settings,
    db_engine: AsyncEngine,
    redis_client: Redis,
    committed_db: async_sessionmaker[AsyncSession],
) -> None:
    """Real commits from concurrent sessions: the unique index decides, the losers get a 409
    (never a 500), and exactly one row exists."""
    relaxed = settings.model_copy(update={"rate_limit_register": "1000/60"})
    app = create_app(relaxed, database=Database(db_engine), redis=redis_client)
    body = {"email": "Race@Example.com", "password": "password-123"}
    async with make_client(app, raise_app_exceptions=False) as c:
        responses = await asyncio.gather(*(c.post(REGISTER, json=body) for _ in range(10)))
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [201] + [409] * 9, [r.text for r in responses if r.status_code >= 500]
    assert {r.json()["error"]["code"] for r in responses if r.status_code == 409} == {"email_taken"}
    async with committed_db() as s:
        assert await _users(s) == 1


# --- a new password ends the sessions opened with the old one --------------------------------


async def _login(client: AsyncClient, email: str, password: str) -> dict[str, str]:
    r = await client.post(LOGIN, data={"username": email, "password": password})
    assert r.status_code == 200, r.text
    tokens: dict[str, str] = r.json()
    return tokens


def _bearer(tokens: dict[str, str]) -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens['access_token']}"}


async def test_a_new_password_refuses_every_token_issued_before_it(
    client: AsyncClient, make_account: AccountFactory
) -> None:
    account = await make_account()
    email = account.user.email
    this_device = await _login(client, email, account.password)
    stolen = await _login(client, email, account.password)
    assert (await client.get(ME, headers=_bearer(stolen))).status_code == 200  # snapshot cached
    r = await client.patch(
        ME,
        headers=_bearer(this_device),
        json={"password": "brand-new-pass", "current_password": account.password},
    )
    assert r.status_code == 200, r.text
    assert "credentials_version" not in r.json()
    for tokens in (this_device, stolen):
        r = await client.get(ME, headers=_bearer(tokens))
        _assert_error(r, 401, "credentials_changed")
        assert r.headers["WWW-Authenticate"] == "Bearer"
        r = await client.post(REFRESH, json={"refresh_token": tokens["refresh_token"]})
        _assert_error(r, 401, "credentials_changed")
    # Logged in again at once (very likely within the same second as the change: the token's
    # version, not its `iat`, is compared), the new pair works and rotates.
    fresh = await _login(client, email, "brand-new-pass")
    assert (await client.get(ME, headers=_bearer(fresh))).status_code == 200
    r = await client.post(REFRESH, json={"refresh_token": fresh["refresh_token"]})
    assert r.status_code == 200
    assert (await client.get(ME, headers=_bearer(r.json()))).status_code == 200
    r = await client.post(LOGIN, data={"username": email, "password": account.password})
    assert r.status_code == 401


async def test_a_name_change_keeps_the_session(
    client: AsyncClient, make_account: AccountFactory
) -> None:
    account = await make_account()
    tokens = await _login(client, account.user.email, account.password)
    r = await client.patch(ME, headers=_bearer(tokens), json={"full_name": "Still Me"})
    assert r.status_code == 200
    assert (await client.get(ME, headers=_bearer(tokens))).status_code == 200
    assert (await client.post(REFRESH, json={"refresh_token": tokens["refresh_token"]})).is_success


async def test_a_refused_password_change_keeps_the_session(
    client: AsyncClient, make_account: AccountFactory, db_session: AsyncSession
) -> None:
    account = await make_account()
    r = await client.patch(
        ME,
        headers=account.headers,
        json={"password": "brand-new-pass", "current_password": "wrong-one"},
    )
    assert r.status_code == 401
    assert (await client.get(ME, headers=account.headers)).status_code == 200
    stored = await db_session.scalar(
        select(User.credentials_version).where(User.id == account.user.id)
    )
    assert stored == 0


async def test_concurrent_password_changes_bump_the_version_once_each(
    settings: Settings,
    db_engine: AsyncEngine,
    redis_client: Redis,
    committed_db: async_sessionmaker[AsyncSession],
) -> None:
    """Real commits: two changes of one user's password race; the version is incremented in
    SQL, so it ends at 2, never 1 (a token issued between the two would carry 1)."""
    live = create_app(settings, database=Database(db_engine), redis=redis_client)
    async with committed_db() as s:
        user = await UserFactory.create_async(
            s, email="racer@example.com", hashed_password=live.state.kit.passwords.hash("old-pw-1")
        )
        await s.commit()
    token, _ = live.state.kit.tokens.create(user.id, "access")
    headers = {"Authorization": f"Bearer {token}"}
    body = {"password": "new-password-1", "current_password": "old-pw-1"}
    async with make_client(live, raise_app_exceptions=False) as c:
        results = await asyncio.gather(*(c.patch(ME, headers=headers, json=body) for _ in range(2)))
    assert [r.status_code for r in results] == [200, 200], [r.text for r in results]
    async with committed_db() as s:
        version = await s.scalar(select(User.credentials_version).where(User.id == user.id))
    assert version == 2


# --- logout revokes all or nothing ------------------------------------------------------------


@pytest.mark.parametrize("slot", ["another-users-refresh", "my-access", "garbage"])
async def test_a_logout_refused_for_its_refresh_token_revokes_nothing(
    client: AsyncClient, make_account: AccountFactory, slot: str
) -> None:
    me, other = await make_account(), await make_account()
    mine = await _login(client, me.user.email, me.password)
    theirs = await _login(client, other.user.email, other.password)
    refresh_token = {
        "another-users-refresh": theirs["refresh_token"],
        "my-access": mine["access_token"],
        "garbage": "not.a.jwt",
    }[slot]
    r = await client.post(LOGOUT, headers=_bearer(mine), json={"refresh_token": refresh_token})
    assert r.status_code == 401
    if slot == "my-access":
        assert r.json()["error"] == r.json()["error"] | {
            "code": "token_wrong_type",
            "message": "A refresh token is required.",
        }
    # Nothing was revoked: both sessions are whole.
    assert (await client.get(ME, headers=_bearer(mine))).status_code == 200
    assert (await client.get(ME, headers=_bearer(theirs))).status_code == 200
    for tokens in (mine, theirs):
        r = await client.post(REFRESH, json={"refresh_token": tokens["refresh_token"]})
        assert r.status_code == 200, r.text


# --- login finds what registration stored -----------------------------------------------------


@pytest.mark.parametrize(
    "username",
    ["  Mixed.Case@EXAMPLE.COM ", "\tmixed.case@example.com\n", "mixed.case@EXAMPLE.com"],
    ids=["spaces-and-case", "tab-newline", "domain-case"],
)
async def test_login_normalises_the_email_as_registration_does(
    client: AsyncClient, username: str
) -> None:
    r = await client.post(
        REGISTER, json={"email": "  Mixed.Case@Example.com ", "password": "password-123"}
    )
    assert r.status_code == 201, r.text
    assert r.json()["email"] == "mixed.case@example.com"
    r = await client.post(LOGIN, data={"username": username, "password": "password-123"})
    assert r.status_code == 200, r.text


# --- refresh token families: a replay ends the login ----------------------------------------


async def _log_in(client: AsyncClient, account: Account) -> dict[str, str]:
    return await _login(client, account.user.email, account.password)


async def _refresh(client: AsyncClient, refresh_token: str) -> Response:
    return await client.post(REFRESH, json={"refresh_token": refresh_token})


async def _rotate(client: AsyncClient, tokens: dict[str, str]) -> dict[str, str]:
    """The new pair a refresh with `tokens`' refresh token returns."""
    rotated: dict[str, str] = (await _refresh(client, tokens["refresh_token"])).json()
    return rotated


async def _assert_refresh_refused(client: AsyncClient, tokens: dict[str, str], code: str) -> None:
    _assert_error(await _refresh(client, tokens["refresh_token"]), 401, code)


async def _assert_login_lives(client: AsyncClient, tokens: dict[str, str]) -> None:
    """The pair's access token still reads /me and its refresh token still refreshes."""
    assert (await client.get(ME, headers=_bearer(tokens))).status_code == 200
    assert (await _refresh(client, tokens["refresh_token"])).status_code == 200


async def test_a_replayed_refresh_token_ends_every_token_of_its_login(
    settings: Settings,
    db_engine: AsyncEngine,
    db_session: AsyncSession,
    redis_client: Redis,
    make_account: AccountFactory,
) -> None:
    """The attacker copied the refresh token and rotated it first; the victim's later use of
    the same token (past the grace window, here 0 s) ends the whole family: the attacker's new
    pair too. Another login of the same user is another family and lives on."""
    account = await make_account()
    strict = settings.model_copy(update={"auth_refresh_reuse_grace_s": 0})
    app = app_on_session(strict, db_engine, db_session, redis_client)
    async with make_client(app, db_session) as c:
        stolen = await _log_in(c, account)
        other_device = await _log_in(c, account)
        thief = await _rotate(c, stolen)
        await _assert_refresh_refused(c, stolen, "refresh_token_reused")
        assert (await c.get(ME, headers=_bearer(thief))).status_code == 401
        await _assert_refresh_refused(c, thief, "token_revoked")
        await _assert_login_lives(c, other_device)


async def test_a_reuse_within_the_grace_window_is_refused_without_ending_the_login(
    client: AsyncClient, make_account: AccountFactory
) -> None:
    """A client that lost the refresh response and retried at once: the retry is refused, the
    pair the first use returned keeps working (the default window is 10 s)."""
    account = await make_account()
    tokens = await _log_in(client, account)
    rotated = await _rotate(client, tokens)
    await _assert_refresh_refused(client, tokens, "token_revoked")
    await _assert_login_lives(client, rotated)


async def test_logout_ends_the_login_including_refresh_tokens_not_sent(
    client: AsyncClient, make_account: AccountFactory
) -> None:
    account = await make_account()
    first = await _log_in(client, account)
    rotated = await _rotate(client, first)
    assert (await client.post(LOGOUT, headers=_bearer(rotated))).status_code == 204
    await _assert_refresh_refused(client, rotated, "token_revoked")  # never sent to logout
    assert (await client.get(ME, headers=_bearer(first))).status_code == 401


async def test_a_refresh_token_from_before_families_still_refreshes(
    app: FastAPI, client: AsyncClient, make_account: AccountFactory
) -> None:
    """Tokens issued before the `fam` claim existed: rotated once as before, and the new pair
    starts a family."""
    account = await make_account()
    legacy, claims = app.state.kit.tokens.create(account.user.id, "refresh")
    assert claims.family is None
    r = await _refresh(client, legacy)
    assert r.status_code == 200
    new = app.state.kit.tokens.decode(r.json()["refresh_token"], "refresh")
    assert new.family is not None
    assert (await _refresh(client, legacy)).status_code == 401
