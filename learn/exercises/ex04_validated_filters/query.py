"""What exercise 4 gives both its start and its solution: the query for a category and a price
range. The exercise is about which values reach it, not about the WHERE clauses."""

from __future__ import annotations

from sqlalchemy import Select, select

from learn.models import Product


def products_matching(
    category: str | None, min_price: int | None, max_price: int | None
) -> Select[Product]:
    """The products in `category` priced from `min_price` to `max_price` (None: no bound)."""
    stmt = select(Product)
    if category is not None:
        stmt = stmt.where(Product.category == category)
    if min_price is not None:
        stmt = stmt.where(Product.price_cents >= min_price)
    if max_price is not None:
        stmt = stmt.where(Product.price_cents <= max_price)
    return stmt
