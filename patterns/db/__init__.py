"""Database building blocks for the guide's "SQLAlchemy Models" and "Dependency Injection".

Async engines and sessions, a session scope that owns commit and rollback, after-commit hooks,
timestamp columns that are timezone-aware on every backend, and a SQL statement counter.
"""

from patterns.db.base import NAMING_CONVENTION, IdMixin, TimestampMixin, UTCDateTime, utcnow
from patterns.db.engine import (
    Database,
    async_url,
    conflict_insert,
    is_sqlite,
    make_async_engine,
    sqlite_pragmas,
    sync_url,
)
from patterns.db.queries import QueryCounter, count_queries
from patterns.db.session import on_commit, session_scope

__all__ = [
    "NAMING_CONVENTION",
    "Database",
    "IdMixin",
    "QueryCounter",
    "TimestampMixin",
    "UTCDateTime",
    "async_url",
    "conflict_insert",
    "count_queries",
    "is_sqlite",
    "make_async_engine",
    "on_commit",
    "session_scope",
    "sqlite_pragmas",
    "sync_url",
    "utcnow",
]
