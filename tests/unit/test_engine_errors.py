"""Which driver errors the engine counts as the server being gone (patterns/db/engine.py)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from sqlalchemy.dialects.postgresql.asyncpg import AsyncAdapt_asyncpg_dbapi as dbapi

from patterns.db.engine import _mark_server_gone


def _error(sqlstate: str | None) -> Exception:
    error = dbapi.Error("boom")  # type: ignore[no-untyped-call]
    error.sqlstate = sqlstate
    return error


@pytest.mark.parametrize(
    ("error", "gone"),
    [
        (_error("08003"), True),  # connection does not exist
        (_error("08006"), True),  # connection failure
        (_error("57P01"), True),  # admin shutdown
        (_error("57P02"), True),  # crash shutdown
        (_error("57P03"), True),  # cannot connect now
        (_error("53300"), True),  # too many connections
        (dbapi.InternalClientError("cannot switch to state 12"), True),  # type: ignore[no-untyped-call]
        (_error("23505"), False),  # unique violation: the statement, not the server
        (_error("40001"), False),  # serialization failure
        (_error("57014"), False),  # query cancelled (statement timeout)
        (_error(None), False),
    ],
)
def test_server_gone_errors_are_marked_as_disconnects(error: Exception, gone: bool) -> None:
    ctx = SimpleNamespace(
        original_exception=error, is_disconnect=False, dialect=SimpleNamespace(loaded_dbapi=dbapi)
    )
    _mark_server_gone(ctx)  # type: ignore[arg-type]
    assert ctx.is_disconnect is gone
