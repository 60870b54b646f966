"""PF007 right: the kit's `SessionDep` (an `AsyncSession` on asyncpg): the endpoint awaits the
query and the event loop serves other requests meanwhile (guide: "Dependency Injection")."""

from __future__ import annotations

from fastapi import APIRouter
from sqlalchemy import text

from reference_app.core.db import SessionDep

SLOW_QUERY = text("SELECT pg_sleep(0.05)")  # stands for any query that takes 50 ms
router = APIRouter()


@router.get("/report")
async def report(db: SessionDep) -> dict[str, str]:
    await db.execute(SLOW_QUERY)
    return {"status": "ok"}
