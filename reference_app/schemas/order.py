"""Order payloads (guide: "Order Processing Flow"): `{"items": [{"id": …, "quantity": …}]}`."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StrictInt, field_validator

from patterns.validation import DbId
from reference_app.models.order import OrderStatus, PaymentStatus

MAX_LINES = 50
MAX_QUANTITY = 10_000


class OrderLineIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: DbId
    quantity: Annotated[StrictInt, Field(ge=1, le=MAX_QUANTITY)]


class OrderCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    items: Annotated[list[OrderLineIn], Field(min_length=1, max_length=MAX_LINES)]

    @field_validator("items")
    @classmethod
    def _one_line_per_item(cls, lines: list[OrderLineIn]) -> list[OrderLineIn]:
        ids = [line.id for line in lines]
        if len(ids) != len(set(ids)):
            raise ValueError("each item may appear once; add up the quantities instead")
        return lines


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
    quantity: Annotated[StrictInt, Field(ge=0, le=1_000_000)]


class InventoryResponse(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    item_id: int
    quantity: int
    updated_at: datetime
