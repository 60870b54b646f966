"""The declarative base every model inherits (guide: "SQLAlchemy Models").

Differences from the guide: explicit plural table names (the guide derives `user` from the class
name while its migration creates `users`), named constraints, timezone-aware timestamps, and
relationships that refuse to lazy-load (`lazy="raise"` is set on each relationship).
"""

from __future__ import annotations

from sqlalchemy import MetaData
from sqlalchemy.orm import DeclarativeBase

from patterns.db import NAMING_CONVENTION, IdMixin, TimestampMixin


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Model(IdMixin, TimestampMixin, Base):
    """A table with `id`, `created_at` and `updated_at`. Subclasses set `__tablename__`."""

    __abstract__ = True
