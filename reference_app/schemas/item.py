"""Item payloads (guide: "Pagination", "Filtering")."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import Annotated, ClassVar

from pydantic import BaseModel, ConfigDict, StrictBool, StringConstraints

from patterns.filtering import Condition, FilterSet, eq, gte, icontains, lte
from patterns.validation import NoNul, decimal_amount, omittable_not_null
from reference_app.models.item import Item

Title = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200), NoNul
]
Category = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=50), NoNul
]
Description = Annotated[str, StringConstraints(max_length=5000), NoNul]

# As the NUMERIC(10, 2) column will hold it, so a write's response shows what a read will:
# 2 → 2.00, 1e2 → 100.00, -0 → 0.00; the schema and the validation agree (docs: Decisions).
Price = Annotated[Decimal, *decimal_amount(digits=10, places=2)]
PriceQuery = Annotated[Decimal, *decimal_amount(digits=10, places=2, in_query=True)]


class ItemCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    title: Title
    description: Description | None = None
    category: Category
    price: Price
    is_featured: StrictBool = False


class ItemUpdate(BaseModel):
    """Only the fields sent change; all but the description may be left out, not nulled."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra=omittable_not_null("title", "category", "price", "is_featured"),
    )
    title: Title | None = None
    description: Description | None = None
    category: Category | None = None
    price: Price | None = None
    is_featured: StrictBool | None = None


class ItemResponse(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    title: str
    description: str | None
    category: str
    price: Decimal
    is_featured: bool
    owner_id: int
    created_at: datetime
    updated_at: datetime


class ItemFilter(FilterSet):
    """`?category=&min_price=&max_price=&q=`; `min_price > max_price` is a 422."""

    conditions: ClassVar[Mapping[str, Condition]] = {
        "category": eq(Item.category),
        "min_price": gte(Item.price),
        "max_price": lte(Item.price),
        "q": icontains(Item.title),
    }
    category: Category | None = None
    min_price: PriceQuery | None = None
    max_price: PriceQuery | None = None
    q: Annotated[str, StringConstraints(min_length=1, max_length=100), NoNul] | None = None
