"""Catalog items and their stock (guide: "SQLAlchemy Models", "Missing Indexes", "Order
Processing Flow")."""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    Text,
    false,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from reference_app.models.base import Model

if TYPE_CHECKING:
    from reference_app.models.user import User


class Item(Model):
    __tablename__ = "items"
    __table_args__ = (
        CheckConstraint("price >= 0", name="price_not_negative"),
        # The list endpoint filters by category and sorts/filters by price: one composite index
        # serves `category = ? AND price BETWEEN ? AND ?`; price alone serves price-only ranges.
        Index("ix_items_category_price", "category", "price"),
    )

    title: Mapped[str] = mapped_column(String(200), nullable=False)
    description: Mapped[str | None] = mapped_column(Text)
    category: Mapped[str] = mapped_column(String(50), nullable=False, index=True)
    price: Mapped[Decimal] = mapped_column(Numeric(10, 2), nullable=False, index=True)
    is_featured: Mapped[bool] = mapped_column(
        Boolean, default=False, server_default=false(), nullable=False, index=True
    )
    owner_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True
    )

    owner: Mapped[User] = relationship(back_populates="items", lazy="raise")
    inventory: Mapped[Inventory | None] = relationship(
        back_populates="item", lazy="raise", cascade="all, delete-orphan", passive_deletes=True
    )


class Inventory(Model):
    """Stock per item. The CHECK constraint is the last line of defence against overselling:
    even a buggy decrement cannot commit a negative quantity."""

    __tablename__ = "inventories"
    __table_args__ = (CheckConstraint("quantity >= 0", name="quantity_not_negative"),)

    item_id: Mapped[int] = mapped_column(
        ForeignKey("items.id", ondelete="CASCADE"), nullable=False, unique=True
    )
    quantity: Mapped[int] = mapped_column(Integer, nullable=False, default=0, server_default="0")

    item: Mapped[Item] = relationship(back_populates="inventory", lazy="raise")
