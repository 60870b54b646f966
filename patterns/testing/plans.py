"""`assert_uses_index`: PostgreSQL's plan for a statement must read an index
(docs/pitfalls/PF002.md; guide: "Query Optimization" › "Missing Indexes").

A missing index is invisible in the code and in a small test database (both plans answer in a
millisecond); the plan is where it shows. By default the check asks the planner with sequential
scans priced out (`enable_seqscan = off`, for this one EXPLAIN): a query no index can serve is
still planned as a Seq Scan, and one an index serves uses it, however few rows the test seeded.
`natural=True` takes the planner's own choice instead, for tests that seed realistic volumes.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql import ClauseElement

INDEX_SCANS = frozenset({"Index Scan", "Index Only Scan", "Bitmap Index Scan"})


@dataclass(frozen=True)
class QueryPlan:
    """PostgreSQL's plan (EXPLAIN, FORMAT JSON): its nodes outermost first, and as text."""

    nodes: list[dict[str, Any]]
    text: str

    @property
    def indexes(self) -> list[str]:
        return [n["Index Name"] for n in self.nodes if n["Node Type"] in INDEX_SCANS]

    @property
    def uses_index(self) -> bool:
        return bool(self.indexes)

    @property
    def seq_scans(self) -> list[str]:
        return [n.get("Relation Name", "?") for n in self.nodes if n["Node Type"] == "Seq Scan"]


def _walk(node: dict[str, Any], depth: int = 0) -> Iterator[tuple[int, dict[str, Any]]]:
    yield depth, node
    for child in node.get("Plans", []):
        yield from _walk(child, depth + 1)


def _line(node: dict[str, Any]) -> str:
    line = str(node["Node Type"])
    if "Index Name" in node:
        line += f" using {node['Index Name']}"
    if "Relation Name" in node:
        line += f" on {node['Relation Name']}"
    for key in ("Index Cond", "Filter", "Recheck Cond"):
        if key in node:
            line += f"  {key}: {node[key]}"
    return line


def _sql(conn: AsyncConnection, statement: ClauseElement | str) -> str:
    if isinstance(statement, str):
        return statement
    compiled = statement.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True})
    return str(compiled)


async def explain(
    conn: AsyncConnection, statement: ClauseElement | str, *, natural: bool = False
) -> QueryPlan:
    """The plan of `statement` (its parameters inlined), not running it."""
    sql = _sql(conn, statement)
    previous = await conn.scalar(text("SHOW enable_seqscan"))
    if not natural:
        await conn.execute(text("SELECT set_config('enable_seqscan', 'off', true)"))
    try:
        raw = await conn.scalar(text(f"EXPLAIN (FORMAT JSON) {sql}"))
    finally:
        if not natural:
            await conn.execute(
                text("SELECT set_config('enable_seqscan', :v, true)"), {"v": previous}
            )
    doc = (json.loads(raw) if isinstance(raw, str) else raw)[0]
    walked = list(_walk(doc["Plan"]))
    return QueryPlan(
        nodes=[node for _, node in walked],
        text="\n".join("  " * depth + _line(node) for depth, node in walked),
    )


async def assert_uses_index(
    conn: AsyncConnection,
    statement: ClauseElement | str,
    index: str | None = None,
    *,
    natural: bool = False,
) -> QueryPlan:
    """Fail unless the plan reads an index (`index`, when named); the plan text is the message."""
    plan = await explain(conn, statement, natural=natural)
    if not plan.uses_index or (index is not None and index not in plan.indexes):
        wanted = f"index {index}" if index else "an index"
        scans = ", ".join(plan.seq_scans)
        reads = f" (Seq Scan on {scans})" if scans else ""
        raise AssertionError(
            f"expected the plan to use {wanted}{reads}; PostgreSQL plans:\n{plan.text}\n"
            f"SQL: {_sql(conn, statement)}"
        )
    return plan
