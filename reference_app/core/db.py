"""The request's database session (guide: "Dependency Injection").

The guide's `get_db` closes the session but never commits or rolls back. Here the dependency owns
the transaction: it commits once when the endpoint returns, rolls back when anything raises, and
runs after-commit hooks. `scope="function"` makes the commit happen *before* the response is
sent, so a client never sees 201 for a write that then failed to commit.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from patterns.db import Database
from patterns.db.session import session_scope
from reference_app.core.state import app_state


def get_database(request: Request) -> Database:
    return app_state(request.app).database


async def get_db(request: Request) -> AsyncIterator[AsyncSession]:
    async with session_scope(get_database(request).sessionmaker) as session:
        yield session


async def get_read_db(request: Request) -> AsyncIterator[AsyncSession]:
    """A session for an endpoint that only reads: autocommit, one round trip per statement
    (`patterns.db.Database.read_sessionmaker`)."""
    async with session_scope(get_database(request).read_sessionmaker) as session:
        yield session


SessionDep = Annotated[AsyncSession, Depends(get_db, scope="function")]
ReadSessionDep = Annotated[AsyncSession, Depends(get_read_db, scope="function")]
