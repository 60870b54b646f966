"""PF001 evidence: statements and time of wrong and right at N = 10, 100, 1000 users, and a
chart of both against N."""

from __future__ import annotations

import statistics
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession

from patterns.db import count_queries, session_scope
from pitfalls._evidence import Evidence, line_chart, stopwatch
from pitfalls._runner import Backends
from pitfalls.pf001_n_plus_one import right, wrong
from reference_app.models import Item, User

SIZES = (10, 100, 1000)
ITEMS_PER_USER = 3
REPEAT = 5

Version = Callable[[AsyncSession], Awaitable[dict[str, list[str]]]]


@dataclass(frozen=True)
class Run:
    queries: int
    seconds: float  # median of REPEAT runs
    answer: dict[str, list[str]]


async def seed(backends: Backends, n: int) -> None:
    """N users with ITEMS_PER_USER items each (bulk inserts: seeding is not what's measured)."""
    await backends.reset()
    async with session_scope(backends.sessionmaker) as session:
        rows = [{"email": f"user{i}@example.com", "hashed_password": "-"} for i in range(n)]
        ids = (await session.scalars(insert(User).returning(User.id), rows)).all()
        items = [
            {
                "title": f"item {k} of {uid}",
                "category": "books",
                "price": Decimal(1),
                "owner_id": uid,
            }
            for uid in ids
            for k in range(ITEMS_PER_USER)
        ]
        await session.execute(insert(Item), items)


async def measure(backends: Backends, version: Version) -> Run:
    """Run `version` REPEAT times, each in a fresh session (nothing cached in the identity map)."""
    times, counts = [], []
    answer: dict[str, list[str]] = {}
    for _ in range(REPEAT):
        async with backends.sessionmaker() as session:
            with count_queries(backends.engine) as counter, stopwatch() as elapsed:
                answer = await version(session)
        times.append(elapsed[0])
        counts.append(counter.count)
    return Run(max(counts), statistics.median(times), answer)


def _same(a: dict[str, list[str]], b: dict[str, list[str]]) -> bool:
    return {k: sorted(v) for k, v in a.items()} == {k: sorted(v) for k, v in b.items()}


async def run(backends: Backends) -> Evidence:
    rows: list[list[object]] = []
    series: dict[str, list[float]] = {k: [] for k in ("wq", "rq", "wt", "rt")}
    same = True
    for n in SIZES:
        await seed(backends, n)
        w, r = (
            await measure(backends, wrong.items_by_owner),
            await measure(backends, right.items_by_owner),
        )
        same = same and _same(w.answer, r.answer) and len(w.answer) == n
        rows.append(
            [
                n,
                w.queries,
                r.queries,
                f"{w.seconds * 1000:,.1f}",
                f"{r.seconds * 1000:,.1f}",
                f"{w.seconds / r.seconds:,.1f}×",
            ]
        )
        for key, value in zip(
            series, (w.queries, r.queries, w.seconds * 1000, r.seconds * 1000), strict=True
        ):
            series[key].append(value)
    chart = line_chart(
        backends.results_dir / "PF001_n_plus_one.png",
        f"PF001 N+1 queries ({backends.dialect}, {ITEMS_PER_USER} items per user)",
        SIZES,
        [
            (
                "SQL statements",
                {"wrong (query per user)": series["wq"], "right (joinedload)": series["rq"]},
            ),
            (
                f"time (ms, median of {REPEAT})",
                {"wrong (query per user)": series["wt"], "right (joinedload)": series["rt"]},
            ),
        ],
    )
    grows = series["wq"] == [n + 1 for n in SIZES]
    constant = len(set(series["rq"])) == 1
    notes = [] if chart else ["chart skipped: install the `pitfalls` dependency group (matplotlib)"]
    if not same:
        notes.append("wrong and right returned different answers")
    return Evidence(
        columns=[
            "N users",
            "wrong: queries",
            "right: queries",
            "wrong: ms",
            "right: ms",
            "wrong/right time",
        ],
        rows=rows,
        shown=grows and constant and same,
        verdict=(
            f"wrong runs N + 1 statements ({int(series['wq'][-1])} at N = {SIZES[-1]}); right runs "
            f"{int(series['rq'][0])} at every N, with the same answer."
        ),
        notes=notes,
        artifacts=[chart] if chart else [],
    )
