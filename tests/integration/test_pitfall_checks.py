"""The harness's run-time checks on real PostgreSQL: N+1 detection catches PF001's wrong version
and not its right one; `assert_uses_index` passes PF002's right version and fails its wrong one,
on an empty table (sequential scans priced out, so only a usable index changes the plan)."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from patterns.testing.nplusone import NPlusOneDetector, default_is_application
from patterns.testing.plugin import IndexAssertion
from pitfalls.pf001_n_plus_one import right as pf001_right
from pitfalls.pf001_n_plus_one import wrong as pf001_wrong
from pitfalls.pf002_missing_index import right as pf002_right
from pitfalls.pf002_missing_index import wrong as pf002_wrong
from reference_app.models import Item, User

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.allow_n_plus_one(reason="the detector under test watches PF001's N+1 itself")
async def test_pf001_n_plus_one_detector_catches_wrong_and_not_right(
    db_session: AsyncSession,
) -> None:
    for i in range(8):
        user = User(email=f"np{i}@example.com", hashed_password="-")
        user.items = [Item(title=f"item {i}", category="books", price=1)]
        db_session.add(user)
    await db_session.flush()
    db_session.expunge_all()
    detector = NPlusOneDetector(5, default_is_application(ROOT))
    detector.install()
    try:
        with detector.watching() as wrong:
            await pf001_wrong.items_by_owner(db_session)
        db_session.expunge_all()
        with detector.watching() as right:
            await pf001_right.items_by_owner(db_session)
    finally:
        detector.uninstall()
    assert [(r.count, r.issued_at.rsplit("/", 1)[-1]) for r in wrong] == [
        (8, "wrong.py:17 in items_by_owner")
    ]
    assert "FROM items WHERE items.owner_id = ?" in wrong[0].statement
    assert right == []


async def test_pf002_right_plan_uses_the_index_and_wrong_plan_scans(
    db_session: AsyncSession, assert_uses_index: IndexAssertion
) -> None:
    conn = await db_session.connection()
    await conn.run_sync(pf002_wrong.metadata.create_all)  # rolled back with the test
    args = ("cat-042", Decimal("5.00"))
    plan = await assert_uses_index(
        pf002_right.cheapest_in_category(*args), "ix_items_category_price"
    )
    assert plan.seq_scans == []
    with pytest.raises(AssertionError, match=r"Seq Scan on pf002_items\); PostgreSQL plans:"):
        await assert_uses_index(pf002_wrong.cheapest_in_category(*args))
    with pytest.raises(AssertionError, match="expected the plan to use index ix_other"):
        await assert_uses_index(pf002_right.cheapest_in_category(*args), "ix_other")
