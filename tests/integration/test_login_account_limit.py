"""Failed logins limited per account as well as per address (guide: "Rate Limiting", "JWT
Authentication"; OWASP's credential-stuffing guidance), on real PostgreSQL and Redis: attempts
on one email from many addresses at once meet one limit, exactly; the 429 is the envelope with
`Retry-After`; it reads the same for an email no account has; a correct password works again
once the window is over, and a success gives its attempt back."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest
from fastapi import FastAPI
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from patterns.db import Database
from reference_app.core.config import Settings
from reference_app.core.rate_limits import login_account_limit
from reference_app.main import create_app
from tests.factories import UserFactory

LOGIN = "/api/v1/auth/login"
LIMIT, WINDOW_S = 5, 60
ADDRESSES = [f"203.0.113.{n}" for n in range(1, 9)]  # eight clients, documentation range
PASSWORD = "right-password-1"


@pytest.fixture
def app(settings: Settings, db_engine: AsyncEngine, redis_client: Redis) -> FastAPI:
    """The app on real commits; the per-address limit out of the way, the per-account one low."""
    limits = settings.model_copy(
        update={
            "rate_limit_login": "1000/60",
            "rate_limit_login_account": f"{LIMIT}/{WINDOW_S}",
        }
    )
    return create_app(limits, database=Database(db_engine), redis=redis_client)


@asynccontextmanager
async def _clients(app: FastAPI) -> AsyncIterator[list[httpx.AsyncClient]]:
    """One HTTP client per address: the app sees each request from its own peer address."""
    clients = [
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app, client=(address, 40_000)),
            base_url="http://test",
        )
        for address in ADDRESSES
    ]
    try:
        yield clients
    finally:
        for client in clients:
            await client.aclose()


async def _user(committed_db: async_sessionmaker[AsyncSession], app: FastAPI, email: str) -> None:
    async with committed_db() as session:
        await UserFactory.create_async(
            session, email=email, hashed_password=app.state.kit.passwords.hash(PASSWORD)
        )
        await session.commit()


async def _login(client: httpx.AsyncClient, email: str, password: str) -> httpx.Response:
    return await client.post(LOGIN, data={"username": email, "password": password})


async def _stuffing(app: FastAPI, email: str, per_address: int = 3) -> list[httpx.Response]:
    """Wrong passwords for `email` from every address at once."""
    async with _clients(app) as clients:
        return await asyncio.gather(
            *(
                _login(client, email, f"guess-{n}-{i}")
                for n, client in enumerate(clients)
                for i in range(per_address)
            )
        )


def _shape(response: httpx.Response) -> tuple[int, str, str]:
    error = response.json()["error"]
    return response.status_code, error["code"], error["message"]


async def test_failed_logins_from_many_addresses_meet_one_limit_per_account(
    app: FastAPI, committed_db: async_sessionmaker[AsyncSession]
) -> None:
    await _user(committed_db, app, "victim@example.com")
    responses = await _stuffing(app, "victim@example.com")

    statuses = sorted(r.status_code for r in responses)
    assert statuses == [401] * LIMIT + [429] * (len(ADDRESSES) * 3 - LIMIT)
    refused = [r for r in responses if r.status_code == 429]
    for r in refused:
        assert r.json()["error"]["code"] == "too_many_failed_attempts"
        assert r.json()["error"]["request_id"] == r.headers["X-Request-ID"]
        assert 1 <= int(r.headers["Retry-After"]) <= WINDOW_S
    # Refused before the password is checked, the right one too: no oracle for the guesser.
    async with _clients(app) as clients:
        r = await _login(clients[0], "Victim@Example.com", PASSWORD)
    assert r.status_code == 429, r.text


async def test_an_unknown_email_is_limited_exactly_like_an_account(
    app: FastAPI, committed_db: async_sessionmaker[AsyncSession]
) -> None:
    await _user(committed_db, app, "known@example.com")
    known = await _stuffing(app, "known@example.com")
    unknown = await _stuffing(app, "nobody@example.com")

    assert sorted(map(_shape, known)) == sorted(map(_shape, unknown))
    assert {r.headers.get("Retry-After") is None for r in known if r.status_code == 401} == {True}
    assert {r.headers.get("Retry-After") is None for r in unknown if r.status_code == 401} == {True}


async def test_a_correct_password_works_once_the_window_is_over(
    app: FastAPI, committed_db: async_sessionmaker[AsyncSession], redis_client: Redis
) -> None:
    await _user(committed_db, app, "patient@example.com")
    await _stuffing(app, "patient@example.com")
    async with _clients(app) as clients:
        assert (await _login(clients[1], "patient@example.com", PASSWORD)).status_code == 429

        # The window ends: its counter expires in Redis, as it would after `Retry-After`.
        key = login_account_limit.key("patient@example.com")
        assert await redis_client.pexpire(key, 1)
        for _ in range(500):  # bounded: the key is gone within milliseconds
            if not await redis_client.exists(key):
                break
            await asyncio.sleep(0.01)
        assert not await redis_client.exists(key)

        r = await _login(clients[2], "patient@example.com", PASSWORD)
    assert r.status_code == 200, r.text
    assert r.json()["access_token"]


async def test_only_failures_count_a_success_gives_its_attempt_back(
    app: FastAPI, committed_db: async_sessionmaker[AsyncSession]
) -> None:
    await _user(committed_db, app, "typo@example.com")
    async with _clients(app) as clients:
        for n in range(LIMIT - 1):
            assert (await _login(clients[n], "typo@example.com", "typo")).status_code == 401
        for n in range(3):  # the owner logs in, several times: no attempt is used up
            assert (await _login(clients[n], "typo@example.com", PASSWORD)).status_code == 200
        last = await _login(clients[5], "typo@example.com", "typo")
        over = await _login(clients[6], "typo@example.com", "typo")
    assert (last.status_code, over.status_code) == (401, 429)
