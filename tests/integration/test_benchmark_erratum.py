"""The guide's user benchmark cannot run more than one round (guide: "Benchmark Testing").

pytest-benchmark calls the benchmarked function many times. The guide's `create_users` builds the
same 100 emails (`test{i}@example.com`) on every call, so the second call violates the unique
index on `users.email`. `tests/benchmarks/test_guide_bench.py` is the fixed version: new emails
in every round.
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from patterns.crud import CRUDBase
from reference_app.models.user import User

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
