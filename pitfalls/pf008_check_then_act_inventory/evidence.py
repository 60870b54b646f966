"""PF008 evidence: BUYERS concurrent purchases of one unit each, every one in its own
transaction and connection, against STOCK units; what was sold and what is left."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from decimal import Decimal
from types import ModuleType

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import async_sessionmaker

from patterns.db import session_scope
from patterns.errors import BusinessRuleError
from pitfalls._evidence import Evidence
from pitfalls._runner import Backends
from pitfalls.pf008_check_then_act_inventory import right, wrong
from reference_app.models import Inventory, Item, User

STOCK = 5
# Each buyer holds its own connection: BUYERS of the server's max_connections (100 by default)
# while parallel test workers hold theirs too, so keep it modest.
BUYERS = 20


@dataclass(frozen=True)
class Sale:
    stock: int
    buyers: int
    sold: int
    refused: int
    left: int

    @property
    def oversold(self) -> int:
        return max(0, self.sold - self.stock)


async def _stocked_item(backends: Backends, name: str) -> int:
    async with session_scope(backends.sessionmaker) as s:
        item = Item(title=f"last {STOCK} kettles", category="kitchen", price=Decimal(10))
        item.owner = User(email=f"pf008-{name}@example.com", hashed_password="-")
        item.inventory = Inventory(quantity=STOCK)
        s.add(item)
    return item.id


async def sale(backends: Backends, version: ModuleType, name: str) -> Sale:
    item_id = await _stocked_item(backends, name)
    engine = backends.make_engine(pool_size=BUYERS)

    all_connected = asyncio.Barrier(BUYERS)

    async def connect() -> None:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
            await all_connected.wait()  # hold it until BUYERS connections are open

    # So no buyer waits to connect. A task group, not gather: if one connection is refused, the
    # others stop waiting at the barrier and the error surfaces as it is.
    async with asyncio.TaskGroup() as tg:
        for _ in range(BUYERS):
            tg.create_task(connect())
    sessions = async_sessionmaker(engine, expire_on_commit=False)

    async def buyer() -> bool:
        try:
            async with session_scope(sessions) as s:
                await version.buy(s, item_id, 1)
        except BusinessRuleError:
            return False
        return True

    outcomes = await asyncio.gather(*(buyer() for _ in range(BUYERS)))
    async with backends.sessionmaker() as s:
        left = await s.scalar(select(Inventory.quantity).where(Inventory.item_id == item_id))
    sold = sum(outcomes)
    return Sale(STOCK, BUYERS, sold, BUYERS - sold, int(left or 0))


async def run(backends: Backends) -> Evidence:
    w, r = await sale(backends, wrong, "wrong"), await sale(backends, right, "right")
    rows: list[list[object]] = [
        [name, s.stock, s.buyers, s.sold, s.refused, s.left, s.oversold]
        for name, s in (("wrong (check, then write)", w), ("right (conditional UPDATE)", r))
    ]
    return Evidence(
        columns=[
            "version",
            "stock",
            "buyers",
            "sales accepted",
            "refused",
            "stock left",
            "units oversold",
        ],
        rows=rows,
        shown=w.oversold > 0 and r.oversold == 0 and r.sold == STOCK and r.left == 0,
        verdict=(
            f"{BUYERS} concurrent buyers, {STOCK} units: wrong accepted {w.sold} sales and still "
            f"shows {w.left} in stock ({w.oversold} units oversold); right sold exactly {r.sold}, "
            f"refused {r.refused}, and ended at {r.left}."
        ),
        notes=[
            "The CHECK (quantity >= 0) did not help the wrong version: each write was a positive "
            "number computed from a stale read. With `SET quantity = quantity - 1` after the "
            "check, the CHECK would turn the oversell into IntegrityErrors (500s) instead."
        ],
    )
