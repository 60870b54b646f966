"""Exercise 1 — a session dependency that owns commit and rollback (guide: "Dependency Injection").

One unit of work per request: commit once after the endpoint returned, roll back on any error
and re-raise it, close the session either way (`async with`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from fastapi import Request
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    factory: async_sessionmaker[AsyncSession] = request.app.state.sessions
    async with factory() as session:
        try:
            yield session
        except BaseException:
            await session.rollback()
            raise
        await session.commit()
