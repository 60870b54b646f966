"""A token attack matrix: every forged, stale or misused token is a 401 in the envelope."""

from __future__ import annotations

import base64
import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest
from fastapi import FastAPI
from httpx import AsyncClient, Response
from sqlalchemy.ext.asyncio import AsyncSession

from reference_app.core.config import Settings
from tests.integration.conftest import Account

ME = "/api/v1/users/me"


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def _claims(settings: Settings, account: Account, **overrides: Any) -> dict[str, Any]:
    now = datetime.now(UTC)
    claims: dict[str, Any] = {
        "sub": str(account.user.id),
        "type": "access",
        "jti": "j" * 32,
        "iat": now,
        "exp": now + timedelta(minutes=30),
        "iss": settings.jwt_issuer,
        "aud": settings.jwt_audience,
    }
    for key, value in overrides.items():
        if value is None:
            claims.pop(key, None)
        else:
            claims[key] = value
    return claims


def _sign(settings: Settings, claims: dict[str, Any], key: str | None = None) -> str:
    return jwt.encode(claims, key or settings.secret_key.get_secret_value(), algorithm="HS256")


Attack = Callable[[FastAPI, Settings, Account, AsyncClient], Awaitable[str]]


async def alg_none(app: FastAPI, s: Settings, a: Account, c: AsyncClient) -> str:
    header = {"alg": "none", "typ": "JWT"}
    claims = json.loads(json.dumps(_claims(s, a), default=lambda d: int(d.timestamp())))
    return f"{_b64(header)}.{_b64(claims)}."


async def other_key(app: FastAPI, s: Settings, a: Account, c: AsyncClient) -> str:
    return _sign(s, _claims(s, a), key="another-secret-that-is-long-enough-0123456789")


async def no_exp(app: FastAPI, s: Settings, a: Account, c: AsyncClient) -> str:
    return _sign(s, _claims(s, a, exp=None))


async def expired(app: FastAPI, s: Settings, a: Account, c: AsyncClient) -> str:
    past = datetime.now(UTC) - timedelta(hours=2)
    return _sign(s, _claims(s, a, iat=past, exp=past + timedelta(minutes=30)))


async def not_yet_valid(app: FastAPI, s: Settings, a: Account, c: AsyncClient) -> str:
    future = datetime.now(UTC) + timedelta(hours=1)
    return _sign(s, _claims(s, a, iat=future, nbf=future, exp=future + timedelta(minutes=30)))


async def refresh_as_access(app: FastAPI, s: Settings, a: Account, c: AsyncClient) -> str:
    token, _ = app.state.kit.tokens.create(a.user.id, "refresh")
    return str(token)


async def wrong_audience(app: FastAPI, s: Settings, a: Account, c: AsyncClient) -> str:
    return _sign(s, _claims(s, a, aud="some-other-api"))


async def wrong_issuer(app: FastAPI, s: Settings, a: Account, c: AsyncClient) -> str:
    return _sign(s, _claims(s, a, iss="https://evil.example"))


async def tampered_payload(app: FastAPI, s: Settings, a: Account, c: AsyncClient) -> str:
    header, _payload, signature = a.token.split(".")
    claims = json.loads(json.dumps(_claims(s, a, sub="1"), default=lambda d: int(d.timestamp())))
    return f"{header}.{_b64(claims)}.{signature}"


async def revoked_by_logout(app: FastAPI, s: Settings, a: Account, c: AsyncClient) -> str:
    r = await c.post("/api/v1/auth/logout", headers=a.headers)
    assert r.status_code == 204
    return a.token


async def integer_sub(app: FastAPI, s: Settings, a: Account, c: AsyncClient) -> str:
    # The guide's "Token Management" encodes an integer sub; PyJWT 2.10+ refuses it on decode.
    claims = _claims(s, a)
    claims["sub"] = a.user.id
    return _sign(s, claims)


async def out_of_range_sub(app: FastAPI, s: Settings, a: Account, c: AsyncClient) -> str:
    return _sign(s, _claims(s, a, sub="99999999999999999999999"))


async def overlong_sub(app: FastAPI, s: Settings, a: Account, c: AsyncClient) -> str:
    # int() refuses over 4300 digits; too long for the refresh body's 4096 characters anyway.
    return _sign(s, _claims(s, a, sub="1" * 5000))


async def garbage(app: FastAPI, s: Settings, a: Account, c: AsyncClient) -> str:
    return "not.a.jwt"


ATTACKS: list[Attack] = [
    alg_none,
    other_key,
    no_exp,
    expired,
    not_yet_valid,
    refresh_as_access,
    wrong_audience,
    wrong_issuer,
    tampered_payload,
    revoked_by_logout,
    integer_sub,
    out_of_range_sub,
    overlong_sub,
    garbage,
]


def _assert_401(r: Response) -> None:
    assert r.status_code == 401, r.text
    assert set(r.json()["error"]) >= {"code", "message", "request_id"}
    assert r.headers["WWW-Authenticate"] == "Bearer"


@pytest.mark.parametrize("attack", ATTACKS, ids=lambda a: a.__name__)
async def test_forged_or_misused_token_is_refused_with_401(
    attack: Attack,
    app: FastAPI,
    settings: Settings,
    client: AsyncClient,
    account: Account,
) -> None:
    ok = await client.get(ME, headers=account.headers)
    assert ok.status_code == 200  # the account itself is fine
    token = await attack(app, settings, account, client)
    _assert_401(await client.get(ME, headers={"Authorization": f"Bearer {token}"}))


@pytest.mark.parametrize(
    "claims",
    [
        {"sub": "²"},  # str.isdigit says yes, int() says no
        {"sub": "٧"},  # an Arabic-Indic seven: int() reads it, but it is not the app's subject
        {"exp": 10**30},
        {"exp": 1e300},
        {"iat": -(10**30)},
        {"ver": True},
        {"ver": -1},
    ],
    ids=["superscript", "arabic-indic", "exp-10**30", "exp-1e300", "iat", "ver", "ver-negative"],
)
@pytest.mark.parametrize("token_type", ["access", "refresh"])
async def test_a_signed_token_with_odd_claims_is_401_token_invalid_not_500(
    settings: Settings,
    client: AsyncClient,
    account: Account,
    claims: dict[str, Any],
    token_type: str,
) -> None:
    token = _sign(settings, _claims(settings, account, type=token_type, **claims))
    if token_type == "access":
        r = await client.get(ME, headers={"Authorization": f"Bearer {token}"})
    else:
        r = await client.post("/api/v1/auth/refresh", json={"refresh_token": token})
    _assert_401(r)
    assert r.json()["error"]["code"] == "token_invalid"


async def test_access_token_cannot_refresh(client: AsyncClient, account: Account) -> None:
    r = await client.post("/api/v1/auth/refresh", json={"refresh_token": account.token})
    _assert_401(r)
    assert r.json()["error"]["code"] == "token_wrong_type"


async def test_deleted_users_token_is_refused(
    client: AsyncClient, account: Account, db_session: AsyncSession
) -> None:
    await db_session.delete(account.user)
    await db_session.flush()
    r = await client.get(ME, headers=account.headers)
    _assert_401(r)
    assert r.json()["error"]["code"] == "user_not_found"


async def test_inactive_users_token_is_refused(
    client: AsyncClient, account: Account, db_session: AsyncSession
) -> None:
    account.user.is_active = False
    await db_session.flush()
    r = await client.get(ME, headers=account.headers)
    _assert_401(r)
    assert r.json()["error"]["code"] == "user_inactive"


async def test_missing_or_malformed_authorization_header_is_401(client: AsyncClient) -> None:
    _assert_401(await client.get(ME))
    _assert_401(await client.get(ME, headers={"Authorization": "Basic dXNlcjpwYXNz"}))
    _assert_401(await client.get(ME, headers={"Authorization": "Bearer "}))
