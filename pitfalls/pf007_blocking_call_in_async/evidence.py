"""PF007 evidence: 20 concurrent requests to each version's endpoint; each request's latency,
the wall time, how many of the 50 ms queries were in flight at once, and what asyncio's debug
mode reports."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from types import ModuleType, SimpleNamespace
from typing import Any

from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient
from sqlalchemy import Engine, event
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.orm import sessionmaker

from patterns.db import Database
from pitfalls._evidence import Evidence, Interval, max_overlap, percentile
from pitfalls._runner import Backends
from pitfalls.pf007_blocking_call_in_async import right, wrong

CONCURRENCY = 20
SLOW_CALLBACK_S = 0.04


@dataclass(frozen=True)
class Load:
    latencies: list[float]  # seconds, per request, as the client saw it
    wall: float
    queries: list[Interval]  # when each slow query was in flight
    slow_callbacks: int  # asyncio debug: "Executing <Task …> took 0.05 seconds"

    @property
    def overlap(self) -> int:
        return max_overlap(self.queries)


@contextmanager
def query_intervals(engine: Engine) -> Iterator[list[Interval]]:
    """When each pg_sleep statement was sent and when its result came back."""
    found: list[Interval] = []

    def before(conn: Any, _c: Any, statement: str, *_a: Any) -> None:
        if "pg_sleep" in statement:
            conn.info.setdefault("pf007", []).append(time.perf_counter())

    def after(conn: Any, _c: Any, statement: str, *_a: Any) -> None:
        if "pg_sleep" in statement:
            found.append(Interval(conn.info["pf007"].pop(), time.perf_counter()))

    event.listen(engine, "before_cursor_execute", before)
    event.listen(engine, "after_cursor_execute", after)
    try:
        yield found
    finally:
        event.remove(engine, "before_cursor_execute", before)
        event.remove(engine, "after_cursor_execute", after)


class _Count(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        if record.getMessage().startswith("Executing"):
            self.count += 1


@contextmanager
def slow_callback_log() -> Iterator[_Count]:
    """asyncio's debug mode: how often one step of a task held the loop > SLOW_CALLBACK_S."""
    loop = asyncio.get_running_loop()
    was_debug, was_slow = loop.get_debug(), loop.slow_callback_duration
    handler = _Count()
    logger = logging.getLogger("asyncio")
    logger.addHandler(handler)
    loop.set_debug(True)
    loop.slow_callback_duration = SLOW_CALLBACK_S
    try:
        yield handler
    finally:
        loop.set_debug(was_debug)
        loop.slow_callback_duration = was_slow
        logger.removeHandler(handler)


async def load(version: ModuleType, sync_engine: Engine, async_engine: AsyncEngine) -> Load:
    app = FastAPI()
    app.include_router(version.router)
    app.state.sync_sessions = sessionmaker(sync_engine)
    app.state.kit = SimpleNamespace(database=Database(async_engine))  # what SessionDep reads
    async with AsyncClient(transport=ASGITransport(app=app), base_url="http://pf007") as client:

        async def one() -> float:
            start = time.perf_counter()
            response = await client.get("/report")
            response.raise_for_status()
            return time.perf_counter() - start

        await asyncio.gather(*(one() for _ in range(CONCURRENCY)))  # connect the pools first
        with (
            query_intervals(sync_engine) as sync_q,
            query_intervals(async_engine.sync_engine) as async_q,
        ):
            start = time.perf_counter()
            latencies = list(await asyncio.gather(*(one() for _ in range(CONCURRENCY))))
            wall = time.perf_counter() - start
        # A separate round: debug mode slows everything a little, so it is not timed.
        with slow_callback_log() as slow:
            await asyncio.gather(*(one() for _ in range(CONCURRENCY)))
    return Load(latencies, wall, sync_q + async_q, slow.count)


async def run(backends: Backends) -> Evidence:
    engines = (
        backends.make_sync_engine(pool_size=CONCURRENCY),
        backends.make_engine(pool_size=CONCURRENCY),
    )
    w, r = await load(wrong, *engines), await load(right, *engines)
    rows: list[list[object]] = [
        [
            name,
            f"{percentile(x.latencies, 50) * 1000:,.0f}",
            f"{percentile(x.latencies, 95) * 1000:,.0f}",
            f"{x.wall * 1000:,.0f}",
            f"{x.overlap} of {CONCURRENCY}",
            x.slow_callbacks,
        ]
        for name, x in (("wrong (sync Session)", w), ("right (AsyncSession)", r))
    ]
    return Evidence(
        columns=[
            "version",
            "p50 ms",
            "p95 ms",
            "wall ms",
            "queries in flight at once (max)",
            f"asyncio debug: steps > {SLOW_CALLBACK_S * 1000:.0f} ms",
        ],
        rows=rows,
        shown=w.overlap == 1 and r.overlap > 1,
        verdict=(
            f"{CONCURRENCY} concurrent requests, each one 50 ms query: wrong ran the queries one "
            f"after another ({w.wall:.2f} s in all, p95 {percentile(w.latencies, 95):.2f} s); "
            f"right ran up to {r.overlap} at once ({r.wall:.2f} s)."
        ),
        notes=[
            "The same thing happens with time.sleep, requests, or any sync client in async def. "
            "A plain `def` endpoint would run in FastAPI's thread pool instead."
        ],
    )
