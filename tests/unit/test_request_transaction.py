"""The request owns its transaction (guide: "Dependency Injection"): `SessionDep` commits once,
before the response is sent, rolls back on error, and runs after-commit hooks only after a commit.

On SQLite (no servers): the behaviour under test is FastAPI's and SQLAlchemy's, not the backend's.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator
from types import SimpleNamespace
from typing import Annotated

import pytest
from fastapi import Depends, FastAPI, Request
from httpx import ASGITransport, AsyncClient
from sqlalchemy import event, select
from sqlalchemy.ext.asyncio import AsyncSession

from patterns.db import Database
from patterns.db.session import on_commit, session_scope
from patterns.errors import BusinessRuleError, install_error_handlers
from patterns.observability.request_id import RequestIdMiddleware
from reference_app.core.db import SessionDep, get_database, get_db
from reference_app.models import User
from tests.factories import UserFactory

# get_db with FastAPI's default scope for yield dependencies ("request"): its exit code, and so
# the commit, runs after the response has been sent.
AfterResponseSessionDep = Annotated[AsyncSession, Depends(get_db)]


async def _close_only_db(request: Request) -> AsyncIterator[AsyncSession]:
    """The guide's shape of `get_db`: open, yield, close; never commit or roll back."""
    session = get_database(request).sessionmaker()
    try:
        yield session
    finally:
        await session.close()


CloseOnlySessionDep = Annotated[AsyncSession, Depends(_close_only_db)]


def _user(email: str) -> User:
    user: User = UserFactory.build(email=email)
    return user


def _app(database: Database, hook_calls: list[str]) -> FastAPI:
    app = FastAPI()
    install_error_handlers(app)
    app.add_middleware(RequestIdMiddleware)
    app.state.kit = SimpleNamespace(database=database)  # all that SessionDep reads

    # No flush in the endpoints: a unique violation surfaces only when the dependency commits.
    @app.post("/users", status_code=201)
    async def create(email: str, db: SessionDep) -> dict[str, str]:
        db.add(_user(email))
        on_commit(db, lambda: hook_calls.append(email))
        return {"email": email}

    @app.post("/users-then-refuse", status_code=201)
    async def create_then_refuse(email: str, db: SessionDep) -> dict[str, str]:
        db.add(_user(email))
        on_commit(db, lambda: hook_calls.append(email))
        await db.flush()
        raise BusinessRuleError("Refused after the write.")

    @app.post("/users-committed-after-response", status_code=201)
    async def create_late(email: str, db: AfterResponseSessionDep) -> dict[str, str]:
        db.add(_user(email))
        return {"email": email}

    @app.post("/users-close-only", status_code=201)
    async def create_close_only(email: str, db: CloseOnlySessionDep) -> dict[str, str]:
        db.add(_user(email))
        return {"email": email}

    return app


@pytest.fixture
def hook_calls() -> list[str]:
    return []


@pytest.fixture
async def api(database: Database, hook_calls: list[str]) -> AsyncIterator[AsyncClient]:
    # raise_app_exceptions=False: see what the client receives, as a real client would.
    transport = ASGITransport(app=_app(database, hook_calls), raise_app_exceptions=False)
    async with AsyncClient(transport=transport, base_url="http://t") as client:
        yield client


async def _stored_emails(database: Database) -> list[str]:
    """What is committed, read through a fresh session of its own."""
    async with database.sessionmaker() as session:
        return list(await session.scalars(select(User.email).order_by(User.email)))


async def test_session_dep_commits_when_the_endpoint_returns(
    api: AsyncClient, database: Database, hook_calls: list[str]
) -> None:
    r = await api.post("/users", params={"email": "ada@example.com"})
    assert r.status_code == 201
    assert await _stored_emails(database) == ["ada@example.com"]
    assert hook_calls == ["ada@example.com"]


async def test_session_dep_rolls_back_and_drops_hooks_when_the_endpoint_raises(
    api: AsyncClient, database: Database, hook_calls: list[str]
) -> None:
    r = await api.post("/users-then-refuse", params={"email": "ada@example.com"})
    assert r.status_code == 409
    assert r.json()["error"]["code"] == "business_rule_violated"
    assert await _stored_emails(database) == []
    assert hook_calls == []


async def test_failed_commit_is_reported_before_the_response_is_sent(
    api: AsyncClient, database: Database, hook_calls: list[str]
) -> None:
    assert (await api.post("/users", params={"email": "ada@example.com"})).status_code == 201
    r = await api.post("/users", params={"email": "ada@example.com"})  # unique violation
    assert r.status_code == 500
    assert r.json()["error"]["code"] == "internal_error"
    assert await _stored_emails(database) == ["ada@example.com"]
    assert hook_calls == ["ada@example.com"]  # the failed request's hook never ran


async def test_default_dependency_scope_sends_201_for_a_write_that_failed_to_commit(
    api: AsyncClient, database: Database
) -> None:
    """Why `SessionDep` uses scope="function": without it the client is told the write happened."""
    assert (await api.post("/users", params={"email": "ada@example.com"})).status_code == 201
    r = await api.post("/users-committed-after-response", params={"email": "ada@example.com"})
    assert r.status_code == 201
    assert await _stored_emails(database) == ["ada@example.com"]  # only the first row exists


async def test_close_only_session_dependency_loses_the_write(
    api: AsyncClient, database: Database
) -> None:
    """The guide's `get_db` never commits: the endpoint answers 201 and nothing is stored."""
    r = await api.post("/users-close-only", params={"email": "ada@example.com"})
    assert r.status_code == 201
    assert await _stored_emails(database) == []


async def test_a_session_that_did_nothing_is_not_committed_but_its_hooks_run(
    database: Database,
) -> None:
    commits: list[str] = []
    hooks: list[str] = []
    for label, work in (("idle", False), ("used", True)):
        async with session_scope(database.sessionmaker) as session:
            event.listen(
                session.sync_session, "after_commit", lambda _s, lbl=label: commits.append(lbl)
            )
            on_commit(session, functools.partial(hooks.append, label))
            if work:
                session.add(_user(f"{label}@example.com"))
    assert commits == ["used"]  # the idle one skipped SQLAlchemy's commit entirely
    assert hooks == ["idle", "used"]
