"""A session scope that owns the transaction, with work deferred until after commit.

The guide's `get_db` only closes the session, and its order flow sends a Celery task inside the
transaction: a worker can pick it up before the commit (or after a rollback). Here endpoints never
commit; the scope commits once on success, rolls back on any error, and only then runs the
callbacks registered with `on_commit` (send a task, drop a cache entry).
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

logger = logging.getLogger("patterns.db")

AfterCommit = Callable[[], Awaitable[None] | None]
_HOOKS_KEY = "kit_after_commit"


def on_commit(session: AsyncSession, callback: AfterCommit) -> None:
    """Run `callback` after the session's transaction commits; drop it on rollback."""
    session.info.setdefault(_HOOKS_KEY, []).append(callback)


async def run_after_commit_hooks(session: AsyncSession) -> None:
    """Run and clear the hooks. A failing hook is logged and does not undo the commit."""
    hooks: list[AfterCommit] = session.info.pop(_HOOKS_KEY, [])
    for hook in hooks:
        try:
            result = hook()
            if inspect.isawaitable(result):
                await result
        except Exception:
            logger.exception("after-commit hook failed")


async def commit(session: AsyncSession) -> None:
    """Commit, then run the after-commit hooks. A session that never began a transaction (no
    statement ran, nothing was added: a request answered from a cache) is not committed, which
    would cost SQLAlchemy's whole commit machinery for nothing; its hooks still run."""
    if session.in_transaction():
        await session.commit()
    await run_after_commit_hooks(session)


async def rollback(session: AsyncSession) -> None:
    session.info.pop(_HOOKS_KEY, None)
    await session.rollback()


@asynccontextmanager
async def session_scope(
    factory: async_sessionmaker[AsyncSession] | Callable[[], AsyncSession],
) -> AsyncIterator[AsyncSession]:
    """One unit of work: commit on success, roll back on error, hooks after commit."""
    async with factory() as session:
        try:
            yield session
        except BaseException:
            await rollback(session)
            raise
        await commit(session)
