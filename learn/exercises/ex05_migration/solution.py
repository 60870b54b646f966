"""Exercise 5 — a migration that matches the models (guide: "Database Migrations").

A required column on a table that has rows takes three steps: add it nullable, fill it, then
make it NOT NULL. The unique index is part of the model, so it is part of the migration. The
downgrade undoes each step in reverse order.

Revision 0002; revises 0001 (which created `shop_items` with `id` and `name`).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_item_sku"
down_revision = "0001_items"


def upgrade() -> None:
    op.add_column("shop_items", sa.Column("sku", sa.String(32), nullable=True))
    op.execute("UPDATE shop_items SET sku = 'ITEM-' || id")
    op.alter_column("shop_items", "sku", existing_type=sa.String(32), nullable=False)
    op.create_index("ix_shop_items_sku", "shop_items", ["sku"], unique=True)


def downgrade() -> None:
    op.drop_index("ix_shop_items_sku", table_name="shop_items")
    op.drop_column("shop_items", "sku")
