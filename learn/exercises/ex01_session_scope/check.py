"""Exercise 1's check: notes saved by a request that succeeds stay; a failing one leaves none.

(No `from __future__ import annotations`: FastAPI reads the routes' annotations at runtime.)
"""

from types import ModuleType
from typing import Annotated

import pytest
from fastapi import APIRouter, Depends, FastAPI
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from learn.models import Note
from learn.support import make_app
from patterns.errors import ConflictError
from patterns.testing import make_client


def _app(learner: ModuleType, sessions: async_sessionmaker[AsyncSession]) -> FastAPI:
    router = APIRouter()
    session_dep = Annotated[AsyncSession, Depends(learner.get_session)]

    @router.post("/notes", status_code=201)
    async def create_note(text: str, session: session_dep, fail: bool = False) -> dict[str, int]:
        note = Note(text=text)
        session.add(note)
        await session.flush()
        if fail:
            raise ConflictError("a note like this exists already")
        return {"id": note.id}

    app = make_app(router)
    app.state.sessions = sessions
    return app


async def _count(sessions: async_sessionmaker[AsyncSession], text: str) -> int:
    async with sessions() as session:
        query = select(func.count()).select_from(Note).where(Note.text == text)
        return int(await session.scalar(query) or 0)


@pytest.mark.integration
async def test_a_successful_request_is_committed(
    learner: ModuleType, committed_db: async_sessionmaker[AsyncSession]
) -> None:
    async with make_client(_app(learner, committed_db)) as client:
        response = await client.post("/notes", params={"text": "hello"})
    assert response.status_code == 201, f"POST /notes answered {response.status_code}"
    assert await _count(committed_db, "hello") == 1, (
        "POST /notes answered 201 but the note is not in the database: get_session must "
        "commit after the endpoint returns (endpoints never commit themselves)"
    )


@pytest.mark.integration
async def test_a_failing_request_is_rolled_back(
    learner: ModuleType, committed_db: async_sessionmaker[AsyncSession], db_engine: AsyncEngine
) -> None:
    async with make_client(_app(learner, committed_db)) as client:
        response = await client.post("/notes", params={"text": "oops", "fail": "true"})
        ok = await client.post("/notes", params={"text": "after the failure"})
    assert response.status_code == 409, (
        f"the endpoint raised ConflictError, the client got {response.status_code}: "
        "re-raise the error after rolling back"
    )
    assert ok.status_code == 201, f"the next request answered {ok.status_code}"
    assert await _count(committed_db, "oops") == 0, (
        "the request that failed left its note behind: roll back when the endpoint raises"
    )
    assert db_engine.pool.checkedout() == 0, (  # type: ignore[attr-defined]
        "a connection was not returned to the pool: close the session (`async with`)"
    )
