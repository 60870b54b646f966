"""Item and stock data access: the guide's generic CRUD, with the names clients may use declared
and the statements stock needs (guide: "CRUD Operations", "Order Processing Flow")."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any, ClassVar

from pydantic import BaseModel
from sqlalchemy import Integer, Numeric, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import QueryableAttribute, selectinload
from sqlalchemy.orm.interfaces import ORMOption

from patterns.crud import CRUDBase
from patterns.db import conflict_insert, utcnow
from reference_app.models.item import Inventory, Item
from reference_app.schemas.item import ItemCreate, ItemUpdate

# Every line's stock in one statement. `locked` takes the lines' stock rows in item id order
# (MATERIALIZED: it runs first, and in that order), so two orders for the same items queue
# instead of deadlocking; the conditional UPDATE is then the check and the decrement at once,
# re-checked on the row's latest version, so two orders cannot both take the last unit. Written
# once as SQL (text): parsed and compiled once per process.
_RESERVE_ALL = text(
    """
    WITH wanted AS (
        SELECT * FROM unnest(CAST(:item_ids AS INTEGER[]), CAST(:quantities AS INTEGER[]))
            AS wanted (item_id, quantity)
    ), locked AS MATERIALIZED (
        SELECT id FROM inventories
        WHERE item_id = ANY (CAST(:item_ids AS INTEGER[]))
        ORDER BY item_id
        FOR UPDATE
    )
    UPDATE inventories
    SET quantity = inventories.quantity - wanted.quantity, updated_at = :now
    FROM locked, wanted
    WHERE inventories.id = locked.id
      AND inventories.item_id = wanted.item_id
      AND inventories.quantity >= wanted.quantity
    RETURNING inventories.item_id,
              (SELECT items.price FROM items WHERE items.id = inventories.item_id) AS price
    """
).columns(item_id=Integer, price=Numeric(10, 2))


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

    async def reserve_all(
        self, session: AsyncSession, lines: Sequence[tuple[int, int]]
    ) -> dict[int, Decimal]:
        """Take each `(item_id, quantity)` line off its item's stock where that much is left;
        return the prices of the lines taken, by item id. A line missing from the result was
        not taken, and the caller must roll back the others (all or nothing is the
        transaction's, as with `reserve`).

        On PostgreSQL one statement for every line (`_RESERVE_ALL`). Elsewhere (SQLite: one
        writer at a time) one `reserve` per line, stopping at the first one refused.
        """
        ordered = sorted(lines)
        if session.get_bind().dialect.name != "postgresql":
            prices: dict[int, Decimal] = {}
            for item_id, quantity in ordered:
                price = await self.reserve(session, item_id, quantity)
                if price is None:
                    break
                prices[item_id] = price
            return prices
        taken = await session.execute(
            _RESERVE_ALL,
            {
                "item_ids": [item_id for item_id, _ in ordered],
                "quantities": [quantity for _, quantity in ordered],
                "now": utcnow(),
            },
        )
        return dict(taken.all())


items = CRUDItem(Item)
inventories = CRUDInventory(Inventory)
