"""Fixtures for the unit suite (no servers)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from patterns.db import Database
from reference_app.models import Base


@pytest.fixture
async def database(tmp_path: Path) -> AsyncIterator[Database]:
    """A SQLite file with the app's tables, for behaviour that is SQLAlchemy's, not a server's."""
    db = Database.from_url(f"sqlite:///{tmp_path}/kit.db")
    async with db.engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    yield db
    await db.dispose()
