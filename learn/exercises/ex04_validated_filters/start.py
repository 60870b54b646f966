"""Exercise 4 — filters and a sort the server validates (guide: "Filtering").

`GET /products/search` filters by category and price range and sorts. Today any string is
taken as a column name to sort by (`sort=stock` reveals stock levels, `sort=metadata` is a
500), an unknown category or a typo'd filter name is silently ignored, and `min_price` above
`max_price` is accepted. Make every bad value a 422: a fixed set of categories (books, games,
tools) and sorts (name, price, -price), prices >= 0, min <= max, and unknown parameters refused.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel

from learn.exercises.ex04_validated_filters.query import products_matching
from learn.models import Product
from learn.support import ProductOut, SessionDep

router = APIRouter()


class ProductFilter(BaseModel):
    category: str | None = None
    min_price: int | None = None
    max_price: int | None = None
    sort: str = "name"


@router.get("/products/search")
async def search_products(
    session: SessionDep, filters: Annotated[ProductFilter, Query()]
) -> list[ProductOut]:
    stmt = products_matching(filters.category, filters.min_price, filters.max_price)
    name = filters.sort.removeprefix("-")
    column = getattr(Product, "price_cents" if name == "price" else name)
    stmt = stmt.order_by(column.desc() if filters.sort.startswith("-") else column, Product.id)
    rows = await session.scalars(stmt.limit(100))
    return [ProductOut.model_validate(row) for row in rows]
