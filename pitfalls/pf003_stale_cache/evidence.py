"""PF003 evidence: read, update, read again; what the database holds and what each version
serves (and whether from the cache), then a rolled-back update."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from types import ModuleType

from sqlalchemy import select

from patterns.cache import Cache, CacheSettings
from patterns.db import session_scope
from pitfalls._evidence import Evidence
from pitfalls._runner import Backends
from pitfalls.pf003_stale_cache import right, wrong
from reference_app.models import Item, User


class _Rollback(Exception):
    """Raised to roll a transaction back on purpose."""


@dataclass(frozen=True)
class Step:
    action: str
    database: Decimal
    served: Decimal
    source: str  # "cache" or "database"

    @property
    def stale(self) -> bool:
        return self.served != self.database


async def scenario(backends: Backends, version: ModuleType, name: str) -> tuple[list[Step], int]:
    """The steps, and the stale entry's remaining TTL in seconds (-2: no entry)."""
    events: list[str] = []
    cache = Cache(
        backends.redis,
        CacheSettings(prefix=backends.key(name)),
        on_event=lambda e, _ns: events.append(e),
    )
    async with session_scope(backends.sessionmaker) as s:
        item = Item(title="kettle", category="kitchen", price=Decimal("10.00"))
        item.owner = User(email=f"pf003-{name}@example.com", hashed_password="-")
        s.add(item)
    item_id = item.id
    steps: list[Step] = []

    async def read(action: str) -> None:
        events.clear()
        async with session_scope(backends.sessionmaker) as s:
            served = await version.get_item(s, cache, item_id)
            database = await s.scalar(select(Item.price).where(Item.id == item_id))
        source = "database" if "miss" in events else "cache"
        assert database is not None
        steps.append(Step(action, database, served.price, source))

    await read("read")
    async with session_scope(backends.sessionmaker) as s:
        await version.update_price(s, cache, item_id, Decimal("12.50"))
    await read("price → 12.50 (committed), read")
    ttl = int(await backends.redis.ttl(cache.key(version.ITEM, {"id": item_id})))
    try:
        async with session_scope(backends.sessionmaker) as s:
            await version.update_price(s, cache, item_id, Decimal("15.00"))
            raise _Rollback
    except _Rollback:
        pass
    await read("price → 15.00 (rolled back), read")
    return steps, ttl


async def run(backends: Backends) -> Evidence:
    w, w_ttl = await scenario(backends, wrong, "wrong")
    r, _ = await scenario(backends, right, "right")
    rows: list[list[object]] = []
    for ws, rs in zip(w, r, strict=True):
        rows.append(
            [
                ws.action,
                ws.database,
                f"{ws.served} from {ws.source}" + (" STALE" if ws.stale else ""),
                f"{rs.served} from {rs.source}" + (" STALE" if rs.stale else ""),
            ]
        )
    shown = any(s.stale for s in w) and not any(s.stale for s in r)
    return Evidence(
        columns=["step", "database", "wrong serves", "right serves"],
        rows=rows,
        shown=shown,
        verdict=(
            f"After the committed update, wrong keeps serving {w[1].served} while the database "
            f"holds {w[1].database}, for {w_ttl} s more (the TTL); right reloads once and serves "
            "the new price, and a rolled-back update leaves its cached entry alone."
        ),
    )
