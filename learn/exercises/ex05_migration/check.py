"""Exercise 5's check: after `upgrade()` autogenerate finds nothing to change (the drift check
the kit runs on its own migrations), existing rows survive, and `downgrade()` goes back.

Runs on a scratch PostgreSQL database of its own; revision 0001 is applied by the check.
"""

from collections.abc import Iterator
from types import ModuleType
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.operations import Operations
from sqlalchemy import Engine, create_engine

from learn.exercises.ex05_migration.models import Base
from learn.models import NAMING
from patterns.db.engine import sync_url

BEFORE = sa.MetaData(naming_convention=NAMING)
sa.Table(
    "shop_items",
    BEFORE,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(100), nullable=False),
)


@pytest.fixture
def engine(scratch_database: str) -> Iterator[Engine]:
    """The database at revision 0001, with two items in it."""
    engine = create_engine(sync_url(scratch_database))
    BEFORE.create_all(engine)
    with engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO shop_items (name) VALUES ('lamp'), ('desk')"))
    yield engine
    engine.dispose()


def _run(engine: Engine, step: Any) -> None:
    with engine.begin() as conn, Operations.context(MigrationContext.configure(conn)):
        step()


def _describe(diff: Any) -> str:
    """One autogenerate difference in words, e.g. `add_index ix_shop_items_sku`."""
    if isinstance(diff, list):  # column modifications come as a list of tuples
        return "; ".join(_describe(d) for d in diff)
    kind, *rest = diff
    if kind.startswith("modify_"):
        _, table, column, _, old, new = rest
        return f"{kind} {table}.{column}: database has {old}, models say {new}"
    names = [getattr(x, "name", None) for x in rest]
    return f"{kind} {' '.join(str(n) for n in names if n)}"


def _drift(engine: Engine, metadata: sa.MetaData) -> list[str]:
    with engine.connect() as conn:
        diffs = compare_metadata(MigrationContext.configure(conn), metadata)
    return [_describe(d) for d in diffs]


@pytest.mark.integration
def test_upgrade_reaches_the_models(learner: ModuleType, engine: Engine) -> None:
    _run(engine, learner.upgrade)
    drift = _drift(engine, Base.metadata)
    assert not drift, (
        "after upgrade(), autogenerate still finds differences between the database and "
        "models.py:\n" + "\n".join(f"  - {d}" for d in drift)
    )
    with engine.connect() as conn:
        skus: dict[str, str | None] = dict(
            conn.execute(sa.text("SELECT name, sku FROM shop_items")).all()
        )
    assert skus.keys() == {"lamp", "desk"}, f"existing items were lost: {skus}"


@pytest.mark.integration
def test_downgrade_goes_back(learner: ModuleType, engine: Engine) -> None:
    _run(engine, learner.upgrade)
    _run(engine, learner.downgrade)
    drift = _drift(engine, BEFORE)
    assert not drift, (
        "after upgrade() then downgrade(), the database is not back at revision 0001:\n"
        + "\n".join(f"  - {d}" for d in drift)
    )
