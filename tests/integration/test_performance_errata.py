"""Errata of the guide's performance tests (guide: "Load Testing", "Benchmark Testing").

* The benchmark cannot run more than one round: pytest-benchmark calls the benchmarked function
  many times, and the guide's `create_users` builds the same 100 emails (`test{i}@example.com`)
  on every call, so the second call violates the unique index on `users.email`.
  `tests/benchmarks/test_guide_bench.py` is the fixed version: new emails in every round.
* The Locust user cannot log in: it posts JSON (`{"email", "password"}`) to an OAuth2 password
  endpoint, which reads a form with `username`. The answer is a 422 without `access_token`, so
  `on_start` raises and no task ever runs. `loadtests/locustfile.py` posts the form.
"""

from __future__ import annotations

from typing import Any

import pytest
from httpx import AsyncClient
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from patterns.crud import CRUDBase
from reference_app.models.user import User
from tests.integration.conftest import AccountFactory

pytestmark = pytest.mark.integration


async def test_guide_user_benchmark_fails_on_its_second_round_with_integrity_error(
    db_session: AsyncSession,
) -> None:
    crud: CRUDBase[User, Any, Any] = CRUDBase(User)

    async def guide_create_users() -> list[User]:
        # The guide's round, as written: the emails depend only on the loop index.
        users = [
            {"email": f"test{i}@example.com", "hashed_password": "not-a-real-hash"}
            for i in range(100)
        ]
        return await crud.bulk_create(db_session, users)

    first_round = await guide_create_users()
    assert len(first_round) == 100
    with pytest.raises(IntegrityError, match="users_email"):
        await guide_create_users()


async def test_guide_load_test_login_with_a_json_body_is_refused_without_a_token(
    client: AsyncClient, make_account: AccountFactory
) -> None:
    account = await make_account()
    guide = await client.post(
        "/api/v1/auth/login", json={"email": account.user.email, "password": account.password}
    )
    assert guide.status_code == 422
    assert "access_token" not in guide.json()
    assert guide.json()["error"]["code"] == "validation_error"

    form = await client.post(
        "/api/v1/auth/login", data={"username": account.user.email, "password": account.password}
    )
    assert form.status_code == 200
    assert form.json()["access_token"]
