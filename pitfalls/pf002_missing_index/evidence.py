"""PF002 evidence: PostgreSQL's plan and its cost for the same query on the same seeded rows,
without and with the index (EXPLAIN ANALYZE, BUFFERS)."""

from __future__ import annotations

import json
import statistics
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import Select, insert, text
from sqlalchemy.ext.asyncio import AsyncConnection

from pitfalls._evidence import Evidence
from pitfalls._runner import Backends
from pitfalls.pf002_missing_index import right, wrong
from reference_app.models import User

ROWS = 100_000
CATEGORIES = 100
CATEGORY, MAX_PRICE = "cat-042", Decimal("5.00")
REPEAT = 5
INDEX_SCANS = ("Index Scan", "Index Only Scan", "Bitmap Index Scan")


@dataclass(frozen=True)
class Plan:
    nodes: list[str]  # node types, outermost first
    scan: str  # the node that reads the table
    index: str | None
    rows_returned: int
    rows_removed: int  # read and thrown away by a filter
    buffers: int  # 8 KiB pages touched (shared hit + read)
    ms: float  # median execution time
    text: str

    @property
    def uses_index(self) -> bool:
        return self.scan in INDEX_SCANS or "Bitmap Index Scan" in self.nodes


async def seed(backends: Backends) -> None:
    """ROWS items in CATEGORIES categories, identical in the kit's `items` and in the
    unindexed `pf002_items`; ANALYZE so the planner knows the numbers."""
    async with backends.engine.begin() as conn:
        await conn.run_sync(wrong.metadata.create_all)
        owner = await conn.scalar(
            insert(User).values(email="pf002@example.com", hashed_password="-").returning(User.id)
        )
        await conn.execute(
            text(
                "INSERT INTO items (title, category, price, owner_id) "
                "SELECT 'item ' || g, 'cat-' || lpad((g % :cats)::text, 3, '0'), "
                "((g * 7919) % 10000) / 100.0, :owner FROM generate_series(1, :rows) AS g"
            ),
            {"cats": CATEGORIES, "owner": owner, "rows": ROWS},
        )
        await conn.execute(
            text(
                "INSERT INTO pf002_items (id, title, category, price) "
                "SELECT id, title, category, price FROM items"
            )
        )
        await conn.execute(text("ANALYZE items"))
        await conn.execute(text("ANALYZE pf002_items"))


def _walk(node: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield node
    for child in node.get("Plans", []):
        yield from _walk(child)


def _sql(conn: AsyncConnection, stmt: Select[int, str]) -> str:
    return str(stmt.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True}))


async def explain(conn: AsyncConnection, stmt: Select[int, str]) -> Plan:
    sql = _sql(conn, stmt)
    times, doc = [], {}
    for _ in range(REPEAT):
        raw = await conn.scalar(text(f"EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) {sql}"))
        doc = (json.loads(raw) if isinstance(raw, str) else raw)[0]
        times.append(float(doc["Execution Time"]))
    nodes = list(_walk(doc["Plan"]))
    scan = next(n for n in reversed(nodes) if "Scan" in n["Node Type"])
    plan_text = await conn.execute(text(f"EXPLAIN (COSTS OFF) {sql}"))
    return Plan(
        nodes=[n["Node Type"] for n in nodes],
        scan=scan["Node Type"],
        index=next((n["Index Name"] for n in nodes if "Index Name" in n), None),
        rows_returned=int(doc["Plan"]["Actual Rows"]),
        rows_removed=sum(int(n.get("Rows Removed by Filter", 0)) for n in nodes),
        buffers=int(doc["Plan"]["Shared Hit Blocks"]) + int(doc["Plan"]["Shared Read Blocks"]),
        ms=statistics.median(times),
        text="\n".join(r[0] for r in plan_text),
    )


async def plans(backends: Backends) -> tuple[Plan, Plan]:
    await seed(backends)
    async with backends.engine.connect() as conn:
        return (
            await explain(conn, wrong.cheapest_in_category(CATEGORY, MAX_PRICE)),
            await explain(conn, right.cheapest_in_category(CATEGORY, MAX_PRICE)),
        )


async def run(backends: Backends) -> Evidence:
    w, r = await plans(backends)
    rows: list[list[object]] = [
        [
            name,
            " → ".join(p.nodes),
            p.index or "-",
            p.rows_returned,
            f"{p.rows_removed:,}",
            f"{p.buffers:,}",
            f"{p.ms:.2f}",
        ]
        for name, p in (("wrong", w), ("right", r))
    ]
    return Evidence(
        columns=["version", "plan", "index", "rows", "rows read and discarded", "buffers", "ms"],
        rows=rows,
        shown=w.scan == "Seq Scan" and not w.uses_index and r.uses_index,
        verdict=(
            f"Same {ROWS:,} rows, same query: wrong is a {w.scan} that reads and discards "
            f"{w.rows_removed:,} rows; right is an {r.scan} on {r.index} "
            f"({w.buffers / max(r.buffers, 1):,.0f}× fewer buffers, "
            f"{w.ms / max(r.ms, 0.001):,.0f}× faster)."
        ),
        notes=[f"wrong plan:\n{w.text}", f"right plan:\n{r.text}"],
    )
