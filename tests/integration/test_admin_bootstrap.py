"""The first admin: from `KIT_FIRST_ADMIN_*` at start-up and from `create-admin`, idempotently."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys

from pydantic import SecretStr
from redis.asyncio import Redis
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from patterns.db import Database
from reference_app.core.config import Settings
from reference_app.main import create_app
from reference_app.models.user import Role, User


async def _admins(session: AsyncSession, email: str) -> list[User]:
    return list(await session.scalars(select(User).where(User.email == email)))


async def test_first_admin_is_created_once_even_by_concurrent_starts(
    settings: Settings,
    db_engine: AsyncEngine,
    redis_client: Redis,
    committed_db: async_sessionmaker[AsyncSession],
) -> None:
    configured = settings.model_copy(
        update={
            "first_admin_email": "Root@Example.com",
            "first_admin_password": SecretStr("root-password-1"),
        }
    )

    async def start() -> None:
        app = create_app(configured, database=Database(db_engine), redis=redis_client)
        async with app.router.lifespan_context(app):
            pass

    await asyncio.gather(*(start() for _ in range(4)))
    async with committed_db() as session:
        admins = await _admins(session, "root@example.com")
    assert len(admins) == 1
    assert admins[0].role == Role.ADMIN.value
    assert admins[0].hashed_password.startswith("$argon2id$")


async def test_create_admin_command_is_idempotent(
    database_url: str, committed_db: async_sessionmaker[AsyncSession]
) -> None:
    env = {
        **os.environ,
        "KIT_DATABASE_URL": database_url,
        "KIT_ADMIN_PASSWORD": "cli-password-1",
    }
    cmd = [sys.executable, "-m", "reference_app", "create-admin", "--email", "cli@example.com"]
    first = await asyncio.to_thread(subprocess.run, cmd, env=env, capture_output=True, text=True)
    assert first.returncode == 0, first.stderr
    assert "created" in first.stdout
    second = await asyncio.to_thread(subprocess.run, cmd, env=env, capture_output=True, text=True)
    assert second.returncode == 0, second.stderr
    assert "already exists" in second.stdout
    async with committed_db() as session:
        count = await session.scalar(
            select(func.count()).select_from(User).where(User.email == "cli@example.com")
        )
    assert count == 1
