"""Count the SQL statements an engine runs (the harness's `assert_num_queries`)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, event
from sqlalchemy.ext.asyncio import AsyncEngine

# Transaction control the test harness adds around each test, not the code under test.
_IGNORED_PREFIXES = ("SAVEPOINT", "RELEASE SAVEPOINT", "ROLLBACK TO SAVEPOINT")


@dataclass
class QueryCounter:
    """The statements seen while the counter is active."""

    statements: list[str] = field(default_factory=list)

    @property
    def count(self) -> int:
        return len(self.statements)

    def report(self) -> str:
        lines = [f"{i}. {s}" for i, s in enumerate(self.statements, 1)]
        return "\n".join(lines) or "(no statements)"


@contextmanager
def count_queries(engine: Engine | AsyncEngine) -> Iterator[QueryCounter]:
    """Record every statement `engine` executes inside the block (executemany counts once)."""
    sync_engine = engine.sync_engine if isinstance(engine, AsyncEngine) else engine
    counter = QueryCounter()

    def _before(
        conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool
    ) -> None:
        text = " ".join(statement.split())
        if not text.upper().startswith(_IGNORED_PREFIXES):
            counter.statements.append(text)

    event.listen(sync_engine, "before_cursor_execute", _before)
    try:
        yield counter
    finally:
        event.remove(sync_engine, "before_cursor_execute", _before)
