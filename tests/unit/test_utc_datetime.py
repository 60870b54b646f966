"""Timestamps are timezone-aware UTC on every backend (guide: "SQLAlchemy Models").

The guide fills `DateTime(timezone=True)` columns with the naive `datetime.utcnow`; these tests pin
what the kit's `UTCDateTime` and `utcnow` do instead, on SQLite (no servers needed).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import Column, DateTime, Engine, Integer, MetaData, Table, create_engine, select
from sqlalchemy.exc import StatementError
from sqlalchemy.orm import Session

from patterns.db import UTCDateTime, utcnow
from reference_app.models import Base
from tests.factories import UserFactory

PLUS_TWO = timezone(timedelta(hours=2))


@pytest.fixture
def engine() -> Iterator[Engine]:
    engine = create_engine("sqlite://")
    yield engine
    engine.dispose()


def _table(column_type: DateTime | UTCDateTime) -> Table:
    return Table(
        "events",
        MetaData(),
        Column("id", Integer, primary_key=True),
        Column("at", column_type),
    )


def test_utcnow_is_aware_and_in_utc() -> None:
    now = utcnow()
    assert now.tzinfo is UTC
    assert abs(now - datetime.now(UTC)) < timedelta(minutes=1)


def test_naive_datetime_is_refused_by_a_utc_column(engine: Engine) -> None:
    events = _table(UTCDateTime())
    events.metadata.create_all(engine)
    with engine.begin() as conn, pytest.raises(StatementError, match="naive datetime"):
        conn.execute(events.insert().values(id=1, at=datetime(2026, 1, 1, 12, 0)))


def test_utc_column_returns_the_same_instant_aware_in_utc(engine: Engine) -> None:
    events = _table(UTCDateTime())
    events.metadata.create_all(engine)
    local_noon = datetime(2026, 1, 1, 12, 0, tzinfo=PLUS_TWO)
    with engine.begin() as conn:
        conn.execute(events.insert().values(id=1, at=local_noon))
        stored = conn.scalar(select(events.c.at))
    assert stored == local_noon
    assert stored.tzinfo is UTC
    assert stored.hour == 10


def test_plain_timezone_column_on_sqlite_loses_the_timezone(engine: Engine) -> None:
    """The guide's column type: SQLite hands back a naive value, which cannot be compared with
    an aware one. `UTCDateTime` exists because of this."""
    events = _table(DateTime(timezone=True))
    events.metadata.create_all(engine)
    with engine.begin() as conn:
        conn.execute(events.insert().values(id=1, at=datetime(2026, 1, 1, 12, 0, tzinfo=UTC)))
        stored = conn.scalar(select(events.c.at))
    assert isinstance(stored, datetime)
    assert stored.tzinfo is None
    with pytest.raises(TypeError, match="offset-naive and offset-aware"):
        _ = stored < utcnow()


def test_model_timestamps_default_to_aware_utc_and_move_on_update(engine: Engine) -> None:
    Base.metadata.create_all(engine)
    long_ago = datetime(2000, 1, 1, tzinfo=UTC)
    with Session(engine, expire_on_commit=False) as session:
        user = UserFactory.build(email="ada@example.com")
        session.add(user)
        session.commit()
        assert user.created_at.tzinfo is UTC
        assert user.updated_at.tzinfo is UTC
        created = user.created_at

        user.updated_at = long_ago  # set explicitly, so `onupdate` leaves it alone this once
        session.commit()
        user.full_name = "Ada"
        session.commit()
        session.refresh(user)
    assert user.created_at == created
    assert user.updated_at > long_ago
    assert user.updated_at.tzinfo is UTC
