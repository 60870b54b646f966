"""Exercise 7's check: who gets what from `GET /admin/report`, with accounts in a real table."""

from types import ModuleType

import pytest
from fastapi import APIRouter, Depends, FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

from learn.models import Account
from learn.support import access_token_for, make_app_on
from patterns.testing import make_client


@pytest.fixture
async def headers(db_session: AsyncSession) -> dict[str, str]:
    """The Authorization header each caller sends (an admin, a user, a token that is no JWT)."""
    admin = Account(email="admin@example.com", hashed_password="-", role="admin")
    user = Account(email="user@example.com", hashed_password="-", role="user")
    db_session.add_all([admin, user])
    await db_session.flush()
    return {
        "admin": f"Bearer {access_token_for(admin)}",
        "user": f"Bearer {access_token_for(user)}",
        "an invalid token": "Bearer not-a-token",
    }


@pytest.fixture
def app(learner: ModuleType, db_session: AsyncSession) -> FastAPI:
    """`GET /admin/report`, behind the learner's `require_role("admin")`."""
    router = APIRouter()

    @router.get("/admin/report", dependencies=[Depends(learner.require_role("admin"))])
    async def report() -> dict[str, int]:
        return {"orders": 42}

    return make_app_on(db_session, router)


EXPECTED = {"no token": 401, "an invalid token": 401, "user": 403, "admin": 200}


@pytest.mark.integration
@pytest.mark.parametrize("who", list(EXPECTED))
async def test_each_caller_gets_the_right_status(
    app: FastAPI, headers: dict[str, str], db_session: AsyncSession, who: str
) -> None:
    sent = {"Authorization": headers[who]} if who in headers else {}
    async with make_client(app, db_session) as client:
        response = await client.get("/admin/report", headers=sent)
    caller = f"an account with role '{who}'" if who in ("user", "admin") else who
    meaning = {401: " (not authenticated)", 403: " (not allowed)", 200: ""}[EXPECTED[who]]
    assert response.status_code == EXPECTED[who], (
        f"GET /admin/report with {caller} answered {response.status_code}, "
        f"expected {EXPECTED[who]}{meaning}"
    )
    if EXPECTED[who] == 401:
        assert response.headers.get("WWW-Authenticate") == "Bearer", (
            "a 401 must say how to authenticate: WWW-Authenticate: Bearer "
            "(AuthenticationError sets it)"
        )
