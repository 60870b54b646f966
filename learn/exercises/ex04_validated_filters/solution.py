"""Exercise 4 — filters and a sort the server validates (guide: "Filtering").

The filter model says what is allowed: `Literal` for the categories and the sorts, `ge=0` for
prices, a model validator for min <= max, `extra="forbid"` for parameters nobody declared. A
sort name is looked up in a fixed mapping, never turned into a column by name.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Self

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import UnaryExpression

from learn.exercises.ex04_validated_filters.query import products_matching
from learn.models import Product
from learn.support import ProductOut, SessionDep

router = APIRouter()

SORTS: dict[str, tuple[UnaryExpression[Any], ...]] = {
    "name": (Product.name.asc(), Product.id.asc()),
    "price": (Product.price_cents.asc(), Product.id.asc()),
    "-price": (Product.price_cents.desc(), Product.id.asc()),
}


class ProductFilter(BaseModel):
    model_config = ConfigDict(extra="forbid")

    category: Literal["books", "games", "tools"] | None = None
    min_price: int | None = Field(default=None, ge=0)
    max_price: int | None = Field(default=None, ge=0)
    sort: Literal["name", "price", "-price"] = "name"

    @model_validator(mode="after")
    def _range(self) -> Self:
        if (
            self.min_price is not None
            and self.max_price is not None
            and self.min_price > self.max_price
        ):
            raise ValueError("min_price must not exceed max_price")
        return self


@router.get("/products/search")
async def search_products(
    session: SessionDep, filters: Annotated[ProductFilter, Query()]
) -> list[ProductOut]:
    stmt = products_matching(filters.category, filters.min_price, filters.max_price)
    rows = await session.scalars(stmt.order_by(*SORTS[filters.sort]).limit(100))
    return [ProductOut.model_validate(row) for row in rows]
