"""Declarative building blocks (guide: "SQLAlchemy Models").

The guide's base derives table names from class names (`user`) while its migration creates
`users`; here every model names its table explicitly. Constraints get deterministic names so
Alembic can drop and alter them on every backend.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import DateTime, Dialect, Integer, text
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

NAMING_CONVENTION: dict[str, str] = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


# Portable: PostgreSQL and SQLite both know CURRENT_TIMESTAMP; `now()` is PostgreSQL-only.
CURRENT_TIMESTAMP = text("CURRENT_TIMESTAMP")


def utcnow() -> datetime:
    """Timezone-aware now; the guide's `datetime.utcnow` is naive and deprecated."""
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """`TIMESTAMP WITH TIME ZONE` that always comes back aware, in UTC.

    PostgreSQL returns aware values already; SQLite stores text and returns naive ones.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("naive datetime given for a timezone-aware column")
        if value is not None and dialect.name == "sqlite":
            return value.astimezone(UTC)
        return value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class IdMixin:
    """An integer surrogate primary key."""

    id: Mapped[int] = mapped_column(Integer, primary_key=True)


class TimestampMixin:
    """`created_at`/`updated_at`: set in Python for the ORM (no refetch after INSERT) and by
    the server for raw SQL."""

    created_at: Mapped[datetime] = mapped_column(
        UTCDateTime(), default=utcnow, server_default=CURRENT_TIMESTAMP, nullable=False
    )
    updated_at: Mapped[datetime] = mapped_column(
        UTCDateTime(),
        default=utcnow,
        onupdate=utcnow,
        server_default=CURRENT_TIMESTAMP,
        nullable=False,
    )
