"""What the query library's tests (filters, pages, keysets) share: SQL compiled for PostgreSQL
and read as text, and the columns of a catalogue table of their own, not the app's."""

from __future__ import annotations

import re
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Integer, Numeric, String, create_engine
from sqlalchemy.orm import Mapped, mapped_column

from patterns.db import UTCDateTime

# A dialect to compile with; creating an engine connects to nothing.
PG = create_engine("postgresql+psycopg://").dialect


def sql(clause: Any) -> str:
    """PostgreSQL SQL on one line, with every bound parameter shown as `?` (names and casts
    vary)."""
    text = str(clause.compile(dialect=PG))
    return re.sub(r"%\(\w+\)s(::\w+)?", "?", " ".join(text.split()))


class CatalogueColumns:
    """A catalogue row's id, title, category, price and creation time, for a test's table (a
    mixin: each test maps them on its own declarative base)."""

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    title: Mapped[str] = mapped_column(String(60))
    category: Mapped[str] = mapped_column(String(20))
    price: Mapped[Decimal] = mapped_column(Numeric(10, 2))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
