"""Migrations run on the embedded SQLite too, and the drift check catches the guide's table name
(guide: "Database Migrations", "SQLAlchemy Models")."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import (
    Column,
    DateTime,
    Engine,
    Integer,
    MetaData,
    String,
    Table,
    create_engine,
    text,
)
from sqlalchemy.exc import OperationalError

from patterns.db import sync_url
from reference_app.core import migrations


@pytest.fixture
def migrated_sqlite(tmp_path: Path) -> Iterator[Engine]:
    """A SQLite file built by the kit's real migrations."""
    url = f"sqlite:///{tmp_path}/kit.db"
    migrations.upgrade(url)
    engine = create_engine(sync_url(url))
    yield engine
    engine.dispose()


def test_now_server_default_breaks_every_insert_on_sqlite() -> None:
    """The guide's migration uses `now()`, which only PostgreSQL knows: SQLite accepts the table
    and then refuses every row that relies on the default."""
    engine = create_engine("sqlite://")
    table = Table(
        "users",
        MetaData(),
        Column("id", Integer, primary_key=True),
        Column("created_at", DateTime(timezone=True), server_default=text("now()")),
    )
    table.metadata.create_all(engine)
    with engine.begin() as conn, pytest.raises(OperationalError, match=r"unknown function: now"):
        conn.execute(table.insert().values(id=1))
    engine.dispose()


def test_kit_migration_fills_timestamps_on_sqlite_for_raw_inserts(migrated_sqlite: Engine) -> None:
    with migrated_sqlite.begin() as conn:
        conn.execute(
            text("INSERT INTO users (email, hashed_password) VALUES ('ada@example.com', 'x')")
        )
        row = conn.execute(text("SELECT created_at, updated_at FROM users")).one()
    assert row.created_at is not None
    assert row.updated_at is not None


def test_drift_check_catches_a_table_name_derived_from_the_class(
    migrated_sqlite: Engine,
) -> None:
    """The guide derives `user` from the class name while its migration creates `users`; the
    same comparison the drift test runs reports both tables."""
    derived = MetaData()
    Table(
        "user",  # what `cls.__name__.lower()` gives for `User`
        derived,
        Column("id", Integer, primary_key=True),
        Column("email", String(320), nullable=False),
    )
    with migrated_sqlite.connect() as conn:
        diffs = compare_metadata(MigrationContext.configure(conn), derived)
    changes = {(d[0], d[1].name) for d in diffs if isinstance(d, tuple)}
    assert ("add_table", "user") in changes
    assert ("remove_table", "users") in changes
