"""The exercises' own small schema: a shop with accounts, products, orders, authors and books.

Separate from `reference_app`'s models (own metadata, `learn_` tables), so the exercises keep
working whatever the reference app's schema becomes. The harness builds these tables in its
template database when the learn plugin is loaded (`learn.plugin`).
"""

from __future__ import annotations

from sqlalchemy import CheckConstraint, ForeignKey, MetaData, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class Account(Base):
    """A user of the shop; `role` is "user" or "admin"."""

    __tablename__ = "learn_accounts"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    hashed_password: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(20), default="user")


class Note(Base):
    __tablename__ = "learn_notes"

    id: Mapped[int] = mapped_column(primary_key=True)
    text: Mapped[str] = mapped_column(String(200))


class Product(Base):
    __tablename__ = "learn_products"
    __table_args__ = (CheckConstraint("stock >= 0", name="stock_not_negative"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    category: Mapped[str] = mapped_column(String(20), index=True)
    price_cents: Mapped[int]
    stock: Mapped[int] = mapped_column(default=0)


class Order(Base):
    __tablename__ = "learn_orders"

    id: Mapped[int] = mapped_column(primary_key=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("learn_products.id"))
    quantity: Mapped[int]
    status: Mapped[str] = mapped_column(String(20), default="pending")


class Author(Base):
    __tablename__ = "learn_authors"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    # lazy="raise": touching `books` without loading them first is an error, not a hidden query.
    books: Mapped[list[Book]] = relationship(back_populates="author", lazy="raise")


class Book(Base):
    __tablename__ = "learn_books"

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    author_id: Mapped[int] = mapped_column(ForeignKey("learn_authors.id"), index=True)
    author: Mapped[Author] = relationship(back_populates="books", lazy="raise")
