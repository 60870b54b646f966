"""Exercise 5 — a migration that matches the models (guide: "Database Migrations").

`learn/exercises/ex05_migration/models.py` gives `ShopItem` a new `sku` column: a required
string of up to 32 characters with a unique index (`ix_shop_items_sku`). This revision is meant
to bring a database that already has items to that state, and `downgrade()` to take it back.
Today autogenerate's comparison still finds differences after `upgrade()`, and `downgrade()`
does nothing. Items that exist get the SKU `ITEM-<id>`.

Revision 0002; revises 0001 (which created `shop_items` with `id` and `name`).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_item_sku"
down_revision = "0001_items"


def upgrade() -> None:
    op.add_column("shop_items", sa.Column("sku", sa.String(32), nullable=True))


def downgrade() -> None:
    pass
