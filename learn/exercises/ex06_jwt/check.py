"""Exercise 6's check: `GET /me` with tokens a client could send, on a real accounts table."""

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from types import ModuleType
from typing import Annotated

import jwt
import pytest
from fastapi import APIRouter, Depends, FastAPI
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.ext.asyncio import AsyncSession

from learn.models import Account
from learn.support import SECRET, SessionDep, make_app_on
from patterns.errors import NotFoundError
from patterns.testing import make_client

Bearer = Annotated[HTTPAuthorizationCredentials, Depends(HTTPBearer())]


@pytest.fixture
async def ada(db_session: AsyncSession) -> Account:
    account = Account(email="ada@example.com", hashed_password="-")
    db_session.add(account)
    await db_session.flush()
    return account


@pytest.fixture
def app(learner: ModuleType, db_session: AsyncSession) -> FastAPI:
    """`GET /me`: the email of the account the learner's `read_access_token` finds in the token."""
    router = APIRouter()

    @router.get("/me")
    async def me(credentials: Bearer, session: SessionDep) -> dict[str, str]:
        found = await session.get(Account, learner.read_access_token(credentials.credentials))
        if found is None:
            raise NotFoundError()
        return {"email": found.email}

    return make_app_on(db_session, router)


async def _me(app: FastAPI, token: str) -> int:
    async with make_client(app, raise_app_exceptions=False) as client:
        response = await client.get("/me", headers={"Authorization": f"Bearer {token}"})
    return response.status_code


@pytest.mark.integration
async def test_a_fresh_token_works_and_expires(
    learner: ModuleType, app: FastAPI, ada: Account
) -> None:
    token = learner.create_access_token(ada.id)
    assert await _me(app, token) == 200, (
        "GET /me with a fresh token from create_access_token was refused"
    )
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims.get("type") == "access", f"the token has no type 'access': {claims}"
    assert "exp" in claims, f"the token never expires (no 'exp' claim): {claims}"
    lifetime = claims["exp"] - datetime.now(UTC).timestamp()
    assert 0 < lifetime <= 3600, f"the token lives {lifetime:.0f} s; keep access tokens short"


def _forged(account_id: int, **overrides: object) -> dict[str, object]:
    now = datetime.now(UTC)
    claims: dict[str, object] = {"sub": str(account_id), "type": "access", "iat": now}
    claims["exp"] = now + timedelta(minutes=5)
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


CASES: dict[str, Callable[[int], str]] = {
    "an expired token": lambda i: jwt.encode(
        _forged(i, exp=datetime.now(UTC) - timedelta(minutes=1)), SECRET, algorithm="HS256"
    ),
    "a refresh token": lambda i: jwt.encode(_forged(i, type="refresh"), SECRET, "HS256"),
    "a token without expiry": lambda i: jwt.encode(_forged(i, exp=None), SECRET, "HS256"),
    "a token signed with HS512 instead of HS256": lambda i: jwt.encode(
        _forged(i), SECRET, algorithm="HS512"
    ),
    "an unsigned token (alg none)": lambda i: jwt.encode(_forged(i), None, algorithm="none"),
    "a token that is not a JWT": lambda i: "not-a-token",
}


@pytest.mark.integration
@pytest.mark.parametrize("case", list(CASES))
async def test_a_bad_token_is_a_401(app: FastAPI, ada: Account, case: str) -> None:
    status = await _me(app, CASES[case](ada.id))
    assert status == 401, (
        f"GET /me with {case} answered {status}; expected 401 "
        "(raise AuthenticationError for anything but a valid, unexpired HS256 access token)"
    )
