"""`assert_num_queries` / `assert_max_queries`, after pytest-django's query assertions."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine
from sqlalchemy.ext.asyncio import AsyncEngine

from patterns.db.queries import QueryCounter, count_queries


class QueryAssertions:
    """Exact and upper-bound statement counts on one engine; failures list the captured SQL."""

    def __init__(self, engine: Engine | AsyncEngine) -> None:
        self.engine = engine

    @contextmanager
    def exactly(self, expected: int) -> Iterator[QueryCounter]:
        with count_queries(self.engine) as counter:
            yield counter
        if counter.count != expected:
            raise AssertionError(
                f"expected {expected} queries, {counter.count} were run:\n{counter.report()}"
            )

    @contextmanager
    def at_most(self, limit: int) -> Iterator[QueryCounter]:
        with count_queries(self.engine) as counter:
            yield counter
        if counter.count > limit:
            raise AssertionError(
                f"expected at most {limit} queries, {counter.count} were run:\n{counter.report()}"
            )
