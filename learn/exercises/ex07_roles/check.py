"""Exercise 7's check: who gets what from `GET /admin/report`, with accounts in a real table."""

from types import ModuleType

import pytest
from fastapi import APIRouter, Depends, FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

from learn.models import Account
from learn.support import access_token_for, make_app_on
from patterns.testing import make_client


async def _setup(learner: ModuleType, session: AsyncSession) -> tuple[FastAPI, dict[str, str]]:
    admin = Account(email="admin@example.com", hashed_password="-", role="admin")
    user = Account(email="user@example.com", hashed_password="-", role="user")
    session.add_all([admin, user])
    await session.flush()
    router = APIRouter()

    @router.get("/admin/report", dependencies=[Depends(learner.require_role("admin"))])
    async def report() -> dict[str, int]:
        return {"orders": 42}

    app = make_app_on(session, router)
    headers = {
        "admin": f"Bearer {access_token_for(admin)}",
        "user": f"Bearer {access_token_for(user)}",
        "an invalid token": "Bearer not-a-token",
    }
    return app, headers


EXPECTED = {"no token": 401, "an invalid token": 401, "user": 403, "admin": 200}


@pytest.mark.integration
@pytest.mark.parametrize("who", list(EXPECTED))
async def test_each_caller_gets_the_right_status(
    learner: ModuleType, db_session: AsyncSession, who: str
) -> None:
    app, headers = await _setup(learner, db_session)
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
