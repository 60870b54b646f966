"""Exercise 2's check: what `POST /accounts` and `GET /accounts/{id}` answer, on a real table."""

from types import ModuleType
from typing import Any

import pytest
from fastapi import APIRouter, Body, FastAPI
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from learn.models import Account
from learn.support import SessionDep, make_app_on
from patterns.testing import make_client

FAST_HASH = "argon2-stand-in:"  # the check stores a marker, not a real hash: it is about schemas


def _app(learner: ModuleType, session: AsyncSession) -> FastAPI:
    router = APIRouter()

    @router.post("/accounts", status_code=201, response_model=learner.AccountOut)
    async def create(session: SessionDep, body: dict[str, Any] = Body()) -> Account:
        try:
            payload = learner.AccountCreate.model_validate(body)
        except ValidationError as exc:
            raise RequestValidationError(exc.errors()) from None
        account = Account(email=payload.email, hashed_password=FAST_HASH + payload.password)
        session.add(account)
        await session.flush()
        return account

    @router.get("/accounts/{account_id}", response_model=learner.AccountOut)
    async def read(account_id: int, session: SessionDep) -> Account | None:
        return await session.get(Account, account_id)

    return make_app_on(session, router)


@pytest.mark.integration
async def test_responses_carry_no_secret(learner: ModuleType, db_session: AsyncSession) -> None:
    async with make_client(_app(learner, db_session), db_session) as client:
        created = await client.post(
            "/accounts", json={"email": "ada@example.com", "password": "correct horse"}
        )
        assert created.status_code == 201, f"POST /accounts answered {created.status_code}"
        read = await client.get(f"/accounts/{created.json()['id']}")
    for name, response in (("POST /accounts", created), ("GET /accounts/{id}", read)):
        body = response.json()
        leaked = sorted(k for k in body if "password" in k)
        assert not leaked, (
            f"{name} answers with {', '.join(leaked)}: a response schema lists only what a "
            "client may see"
        )
        assert set(body) == {"id", "email", "role"}, (
            f"{name} answers with the fields {sorted(body)}; expected exactly id, email and role"
        )


@pytest.mark.integration
@pytest.mark.parametrize("password", ["short", "x" * 129])
async def test_a_password_out_of_bounds_is_refused(
    learner: ModuleType, db_session: AsyncSession, password: str
) -> None:
    async with make_client(_app(learner, db_session), db_session) as client:
        response = await client.post(
            "/accounts", json={"email": "bob@example.com", "password": password}
        )
    assert response.status_code == 422, (
        f"a password of {len(password)} characters was accepted ({response.status_code}); "
        "AccountCreate must refuse fewer than 8 and more than 128"
    )
    assert response.json()["error"]["code"] == "validation_error"
