"""`python -m reference_app seed`: demo data, and a second run changes nothing."""

from __future__ import annotations

import secrets

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from reference_app.models.item import Inventory, Item
from reference_app.models.user import User
from tests.integration.conftest import run_kit

pytestmark = pytest.mark.slow  # runs the CLI in a new process


async def _counts(committed_db: async_sessionmaker[AsyncSession]) -> tuple[int, int, int]:
    async with committed_db() as s:
        users = await s.scalar(select(func.count()).select_from(User))
        items = await s.scalar(select(func.count()).select_from(Item))
        stock = await s.scalar(select(func.count()).select_from(Inventory))
    return int(users or 0), int(items or 0), int(stock or 0)


async def test_seed_twice_changes_nothing(
    database_url: str, committed_db: async_sessionmaker[AsyncSession]
) -> None:
    env = {"KIT_DATABASE_URL": database_url}
    args = ("seed", "--users", "5", "--items", "1500")
    first = await run_kit(*args, env=env)
    assert first.returncode == 0, first.stderr
    assert "8 users and 1500 items added" in first.stdout
    after_first = await _counts(committed_db)
    assert after_first == (8, 1500, 1500)
    second = await run_kit(*args, env=env)
    assert second.returncode == 0, second.stderr
    assert "0 users and 0 items added" in second.stdout
    assert await _counts(committed_db) == after_first
    async with committed_db() as s:
        guide_user = await s.scalar(select(User).where(User.email == "test@example.com"))
    assert guide_user is not None


async def test_seed_refuses_demo_accounts_in_prod_unless_forced(
    database_url: str, committed_db: async_sessionmaker[AsyncSession]
) -> None:
    """The demo admin's password is in the docs: seeding it into production hands out an admin."""
    env = {
        "KIT_DATABASE_URL": database_url,
        "KIT_ENV": "prod",
        "KIT_SECRET_KEY": secrets.token_urlsafe(48),
    }
    refused = await run_kit("seed", "--users", "1", "--items", "0", env=env)
    assert refused.returncode != 0
    assert "refusing to seed demo accounts with KIT_ENV=prod" in refused.stderr
    assert "--force" in refused.stderr
    assert await _counts(committed_db) == (0, 0, 0)

    forced = await run_kit("seed", "--users", "1", "--items", "0", "--force", env=env)
    assert forced.returncode == 0, forced.stderr
    assert "4 users and 0 items added" in forced.stdout
