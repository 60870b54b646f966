"""Exercise 1 — a session dependency that owns commit and rollback (guide: "Dependency Injection").

Every endpoint of the shop gets its database session from `get_session`. Endpoints never
commit: the dependency is the one place that decides the request's transaction. Today a note
saved by `POST /notes` is gone after the request. Make `get_session` commit when the endpoint
returned normally and roll back when it raised, then re-raise so the error still reaches the
client.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from fastapi import Request
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    factory: async_sessionmaker[AsyncSession] = request.app.state.sessions
    async with factory() as session:
        yield session
