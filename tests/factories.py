"""The one way tests make rows: factory-boy factories of the app's ORM models.

Each factory builds model instances (with their related rows, through the relationships) and
`await XFactory.create_async(session, **overrides)` adds them to the session and flushes once
(`patterns.testing.AsyncFactory`): ids assigned, nothing committed unless the test commits.

    user = await UserFactory.create_async(db_session, role=Role.ADMIN.value)
    item = await ItemFactory.create_async(db_session, owner=user, stock=5)
    order = await OrderFactory.create_async(db_session, user=user, basket=[(item, 2)])

`hashed_password` is a placeholder no password matches: pass `password=` to hash a real one
(with the app's hasher when a test logs in).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import factory

from patterns.security import PasswordHasher
from patterns.testing import AsyncFactory
from reference_app.models import Inventory, Item, Order, OrderItem, Payment, User
from reference_app.models.user import Role

__all__ = ["ItemFactory", "OrderFactory", "UserFactory"]

_HASHER = PasswordHasher()


def _hash(password: str | None) -> str:
    return _HASHER.hash(password) if password is not None else "not-a-real-hash"


class UserFactory(AsyncFactory[User]):
    """A user; `password=` stores its real hash, `role=` takes a `Role` or its value."""

    class Meta:
        model = User
        exclude = ("password",)

    class Params:
        password: str | None = None

    email = factory.LazyFunction(lambda: f"user-{uuid.uuid4().hex[:12]}@example.com")
    hashed_password = factory.LazyAttribute(lambda o: _hash(o.password))
    full_name = factory.Faker("name")
    role = Role.USER.value
    is_active = True

    @classmethod
    def _adjust_kwargs(cls, **kwargs: Any) -> dict[str, Any]:
        role = kwargs.get("role")
        if isinstance(role, Role):
            kwargs["role"] = role.value
        return kwargs


class ItemFactory(AsyncFactory[Item]):
    """An item with an owner (a new user unless `owner=` or `owner_id=` is given) and, with
    `stock=N`, an inventory row of N."""

    class Meta:
        model = Item
        exclude = ("stock",)

    class Params:
        stock: int | None = None

    title = factory.Sequence(lambda n: f"Item {n}")
    category = "tools"
    price = Decimal("9.50")
    owner = factory.SubFactory(UserFactory)
    inventory = factory.LazyAttribute(
        lambda o: Inventory(quantity=o.stock) if o.stock is not None else None
    )

    @classmethod
    def _adjust_kwargs(cls, **kwargs: Any) -> dict[str, Any]:
        if kwargs.get("owner") is None or kwargs.get("owner_id") is not None:
            kwargs.pop("owner", None)  # owner_id names the owner
        if kwargs.get("inventory") is None:
            kwargs.pop("inventory", None)
        return kwargs


def _flushed_id(user: User | None) -> int:
    if user is None or user.id is None:
        raise ValueError("OrderFactory needs user= (a flushed User) or user_id=")
    return user.id


def _lines(lines: Sequence[tuple[Item, int]]) -> list[OrderItem]:
    return [
        OrderItem(item_id=item.id, quantity=quantity, unit_price=item.price)
        for item, quantity in lines
    ]


class OrderFactory(AsyncFactory[Order]):
    """An order of `user` (a flushed User, or pass `user_id=`) with its lines and payment.

    `basket=[(item, quantity), ...]` (items already flushed) becomes the order lines at the
    items' prices; `total` is their sum; the payment is for the total, with a unique reference
    (`reference=` to choose it, `paid=False` for an order without a payment row)."""

    class Meta:
        model = Order
        exclude = ("user", "basket", "reference", "paid")

    class Params:
        user: User | None = None
        basket: Sequence[tuple[Item, int]] = ()
        reference = factory.LazyFunction(lambda: f"pay_{uuid.uuid4().hex}")
        paid = True

    user_id = factory.LazyAttribute(lambda o: _flushed_id(o.user))
    status = "pending"
    lines = factory.LazyAttribute(lambda o: _lines(o.basket))
    total = factory.LazyAttribute(
        lambda o: sum((line.unit_price * line.quantity for line in o.lines), Decimal(0))
    )
    payment = factory.LazyAttribute(
        lambda o: Payment(amount=o.total, reference=o.reference) if o.paid else None
    )
