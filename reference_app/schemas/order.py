"""Order payloads (guide: "Order Processing Flow"): `{"items": [{"item_id": …, "quantity": …}]}`.

A line names its item `item_id` both ways, as the response does. The guide's `id` is still
accepted in a request (the same field; sending both is refused), and left out of the schema so
new clients see one name (docs: Decisions).
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, Strict, field_validator

from patterns.validation import DbId, WholeNumber
from reference_app.models.order import OrderStatus, PaymentStatus

MAX_LINES = 50
MAX_QUANTITY = 10_000


class OrderLineIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    item_id: Annotated[DbId, Field(validation_alias=AliasChoices("item_id", "id"))]
    quantity: Annotated[int, Strict(), Field(ge=1, le=MAX_QUANTITY), WholeNumber]

    @property
    def id(self) -> int:
        """The item's id under the guide's name, for code written against it."""
        return self.item_id


class OrderCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    items: Annotated[list[OrderLineIn], Field(min_length=1, max_length=MAX_LINES)]

    @field_validator("items")
    @classmethod
    def _one_line_per_item(cls, lines: list[OrderLineIn]) -> list[OrderLineIn]:
        """An item named on several lines is one line with their quantities added up (a list
        of objects cannot be declared unique by one field in the schema; docs: Decisions)."""
        merged: dict[int, int] = {}
        for line in lines:
            merged[line.item_id] = merged.get(line.item_id, 0) + line.quantity
        if len(merged) == len(lines):
            return lines
        return [OrderLineIn(item_id=i, quantity=q) for i, q in merged.items()]


class OrderLineResponse(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    item_id: int
    quantity: int
    unit_price: Decimal


class PaymentResponse(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    status: PaymentStatus
    amount: Decimal
    reference: str


class OrderResponse(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    user_id: int
    status: OrderStatus
    total: Decimal
    created_at: datetime
    updated_at: datetime
    lines: list[OrderLineResponse]
    payment: PaymentResponse | None


class InventoryUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    quantity: Annotated[int, Strict(), Field(ge=0, le=1_000_000), WholeNumber]


class InventoryResponse(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    item_id: int
    quantity: int
    updated_at: datetime
