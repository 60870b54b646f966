"""Item and stock data access: the guide's generic CRUD, with the names clients may use declared
and the statements stock needs (guide: "CRUD Operations", "Order Processing Flow")."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any, ClassVar

from pydantic import BaseModel
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import QueryableAttribute, selectinload
from sqlalchemy.orm.interfaces import ORMOption

from patterns.crud import CRUDBase
from patterns.db import conflict_insert, utcnow
from reference_app.models.item import Inventory, Item
from reference_app.schemas.item import ItemCreate, ItemUpdate


class CRUDItem(CRUDBase[Item, ItemCreate, ItemUpdate]):
    filterable: ClassVar[dict[str, QueryableAttribute[Any]]] = {
        "category": Item.category,
        "owner_id": Item.owner_id,
        "is_featured": Item.is_featured,
    }
    loadable: ClassVar[dict[str, ORMOption]] = {
        "owner": selectinload(Item.owner),
        "inventory": selectinload(Item.inventory),
    }
    selectable: ClassVar[dict[str, QueryableAttribute[Any]]] = {
        "title": Item.title,
        "category": Item.category,
        "price": Item.price,
    }

    async def featured(self, session: AsyncSession, limit: int) -> Sequence[Item]:
        return await self.get_optimized(session, filters={"is_featured": True}, limit=limit)

    async def existing_ids(self, session: AsyncSession, ids: Sequence[int]) -> set[int]:
        return set(await session.scalars(select(Item.id).where(Item.id.in_(ids))))


class CRUDInventory(CRUDBase[Inventory, BaseModel, BaseModel]):
    async def lock_for_item(self, session: AsyncSession, item_id: int) -> None:
        """Lock the item's stock row (if any) until the transaction ends."""
        await session.execute(
            select(Inventory.id).where(Inventory.item_id == item_id).with_for_update()
        )

    async def quantity_of(self, session: AsyncSession, item_id: int) -> int:
        quantity = await session.scalar(
            select(Inventory.quantity).where(Inventory.item_id == item_id)
        )
        return quantity or 0

    async def set_quantity(self, session: AsyncSession, item_id: int, quantity: int) -> Inventory:
        """One upsert: two first stockings at once cannot both insert, and it locks only the
        stock row. Raises IntegrityError when the item does not exist (any more)."""
        values = conflict_insert(session, Inventory).values(item_id=item_id, quantity=quantity)
        upsert = values.on_conflict_do_update(
            index_elements=[Inventory.item_id],
            set_={"quantity": values.excluded.quantity, "updated_at": utcnow()},
        ).returning(Inventory)
        rows = await session.scalars(upsert, execution_options={"populate_existing": True})
        return rows.one()

    async def reserve(self, session: AsyncSession, item_id: int, quantity: int) -> Decimal | None:
        """Take `quantity` off the item's stock if that much is left, and return the item's
        price (read in the same statement: one round trip per line); None when nothing was
        taken. The conditional UPDATE is the check and the decrement at once, so two orders
        cannot both take the last unit."""
        # Correlated to the updated row. SQLite renders the subquery's columns unqualified
        # ("WHERE id = item_id"), which resolves right only because `items` has no `item_id`
        # column; tests/unit/test_order_sqlite.py checks the prices there.
        price = select(Item.price).where(Item.id == Inventory.item_id).scalar_subquery()
        result: Decimal | None = await session.scalar(
            update(Inventory)
            .where(Inventory.item_id == item_id, Inventory.quantity >= quantity)
            .values(quantity=Inventory.quantity - quantity, updated_at=utcnow())
            .returning(price)
        )
        return result


items = CRUDItem(Item)
inventories = CRUDInventory(Inventory)
