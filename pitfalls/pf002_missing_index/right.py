"""PF002 right: the kit's `Item` declares `Index("ix_items_category_price", "category",
"price")`, which serves the equality, the range and the sort (guide: "Missing Indexes")."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import Select, select

from reference_app.models import Item


def cheapest_in_category(category: str, max_price: Decimal) -> Select[int, str]:
    return (
        select(Item.id, Item.title)
        .where(Item.category == category, Item.price <= max_price)
        .order_by(Item.price)
        .limit(20)
    )
