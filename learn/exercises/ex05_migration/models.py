"""Exercise 5's models, as they are after the migration: the state the database must reach.

`shop_items` existed before (revision 0001, created by the check); the migration adds `sku`, a
required code unique per item.
"""

from __future__ import annotations

from sqlalchemy import MetaData, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from learn.models import NAMING


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class ShopItem(Base):
    __tablename__ = "shop_items"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    sku: Mapped[str] = mapped_column(String(32), unique=True, index=True)
