"""PF002 wrong: the catalog listing filters by category and price, and nothing indexes them
(guide: "Missing Indexes")."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import Column, Integer, MetaData, Numeric, Select, String, Table, select

metadata = MetaData()

# The kit's `items` columns, declared the way the guide's "wrong way" declares them: no index.
items = Table(
    "pf002_items",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("title", String(200), nullable=False),
    Column("category", String(50), nullable=False),
    Column("price", Numeric(10, 2), nullable=False),
)


def cheapest_in_category(category: str, max_price: Decimal) -> Select[int, str]:
    return (
        select(items.c.id, items.c.title)
        .where(items.c.category == category, items.c.price <= max_price)
        .order_by(items.c.price)
        .limit(20)
    )
