"""`send_after_commit` with `after_response`: the publish waits for the commit, then for the
response (Starlette's background tasks), and a failure there is logged, never raised. On
SQLite: the behaviour under test is the session's and Starlette's, not a broker's."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from starlette.background import BackgroundTasks

from patterns.db import Database
from patterns.db.session import session_scope
from patterns.tasks import send_after_commit


class FakeTask:
    """Records `apply_async` calls; raises instead when `fail` is set."""

    def __init__(self, *, fail: bool = False) -> None:
        self.sent: list[tuple[Any, ...]] = []
        self.fail = fail

    def apply_async(self, args: Any = (), kwargs: Any = None, **options: Any) -> None:
        if self.fail:
            raise ConnectionError("broker unreachable")
        self.sent.append(tuple(args))


async def test_the_publish_waits_for_the_commit_and_then_for_the_response(
    database: Database,
) -> None:
    task, background = FakeTask(), BackgroundTasks()
    async with session_scope(database.sessionmaker) as session:
        send_after_commit(session, task, args=(7,), after_response=background)
        assert background.tasks == []  # nothing before the commit
    assert task.sent == []  # committed, but the response has not gone out yet
    await background()  # what Starlette does once the response is sent
    assert task.sent == [(7,)]


async def test_a_rolled_back_transaction_hands_nothing_to_the_response(
    database: Database,
) -> None:
    task, background = FakeTask(), BackgroundTasks()
    with pytest.raises(RuntimeError):
        async with session_scope(database.sessionmaker) as session:
            send_after_commit(session, task, args=(7,), after_response=background)
            raise RuntimeError("the endpoint failed")
    await background()
    assert background.tasks == []
    assert task.sent == []


async def test_a_failed_publish_after_the_response_is_logged_not_raised(
    database: Database, caplog: pytest.LogCaptureFixture
) -> None:
    task, background = FakeTask(fail=True), BackgroundTasks()
    async with session_scope(database.sessionmaker) as session:
        task_id = send_after_commit(session, task, args=(7,), after_response=background)
    with caplog.at_level(logging.ERROR, logger="patterns.tasks"):
        await background()
    assert any(task_id in r.getMessage() and r.exc_info for r in caplog.records)


@pytest.mark.parametrize("after_response", [True, False], ids=["after-response", "after-commit"])
async def test_a_failed_publish_names_the_task_and_its_log_context(
    database: Database, caplog: pytest.LogCaptureFixture, after_response: bool
) -> None:
    """Whichever hook publishes, the error says what work was left undone (the order to redo),
    not only a task id nobody can look up once the publish failed."""
    task, background = FakeTask(fail=True), BackgroundTasks()
    with caplog.at_level(logging.ERROR, logger="patterns.tasks"):
        async with session_scope(database.sessionmaker) as session:
            task_id = send_after_commit(
                session,
                task,
                args=(7,),
                log_context={"order_id": 7},
                after_response=background if after_response else None,
            )
        await background()
    [record] = [r for r in caplog.records if r.name == "patterns.tasks"]
    assert record.exc_info is not None
    message = record.getMessage()
    assert task_id in message
    assert "FakeTask" in message
    assert message.endswith("failed after commit; order_id=7")
    fields = (getattr(record, "order_id", None), getattr(record, "task_id", None))
    assert fields == (7, task_id)  # searchable in a JSON log, not only readable
