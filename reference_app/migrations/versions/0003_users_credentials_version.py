"""users credentials version

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # A constant default: PostgreSQL 11+ adds the column without rewriting the table, and
    # existing users start at 0, the version every token issued before this revision implies.
    op.add_column(
        "users",
        sa.Column("credentials_version", sa.Integer(), server_default=sa.text("0"), nullable=False),
    )


def downgrade() -> None:
    with op.batch_alter_table("users") as batch:  # SQLite (the embedded default) rebuilds it
        batch.drop_column("credentials_version")
