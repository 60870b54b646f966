"""Item payloads (guide: "Pagination", "Filtering")."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import Annotated, ClassVar

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StringConstraints,
)

from patterns.filtering import Condition, FilterSet, eq, gte, icontains, lte
from patterns.validation import NoNul, omittable_not_null
from reference_app.models.item import Item

Title = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200), NoNul
]
Category = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=50), NoNul
]
Description = Annotated[str, StringConstraints(max_length=5000), NoNul]
CENT = Decimal("0.01")


def _to_cents(price: Decimal) -> Decimal:
    # As the NUMERIC(10, 2) column will hold it, so a write's response shows what a read will:
    # "2" → 2.00, "1e2" → 100.00, "-0" → 0.00 (the validator has already bounded the digits).
    return (price + 0).quantize(CENT)


Price = Annotated[Decimal, Field(ge=0, max_digits=10, decimal_places=2), AfterValidator(_to_cents)]


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
    min_price: Price | None = None
    max_price: Price | None = None
    q: Annotated[str, StringConstraints(min_length=1, max_length=100), NoNul] | None = None
