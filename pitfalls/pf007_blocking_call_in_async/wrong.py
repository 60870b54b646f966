"""PF007 wrong: an `async def` endpoint on a sync `Session` (psycopg), as the guide wires
`db: Session = Depends(get_db)` (guide: "Dependency Injection")."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from sqlalchemy import text
from sqlalchemy.orm import Session

SLOW_QUERY = text("SELECT pg_sleep(0.05)")  # stands for any query that takes 50 ms
router = APIRouter()


def get_db(request: Request) -> Iterator[Session]:
    with request.app.state.sync_sessions() as session:
        yield session


@router.get("/report")
async def report(db: Annotated[Session, Depends(get_db)]) -> dict[str, str]:
    # The event loop's only thread waits here for PostgreSQL: no other request moves meanwhile.
    db.execute(SLOW_QUERY)
    return {"status": "ok"}
