"""What each of the kit's every-request layers costs, in process (`floor --layers N`;
docs/performance.md, "What each layer costs").

A FastAPI `/ping` is called through ASGI (no socket, no HTTP parsing) with the kit's layers added
one at a time, in the order the reference app stacks them, then with featured's answer: a
memory-tier hit served by `MemoryHitMiddleware` inside them all. Every variant runs once per
round, for `rounds` interleaved rounds, so a machine that gets busier moves them alike; each
figure is the median of the rounds. Logging is configured as in production (JSON lines) and
written to /dev/null. The access line alone is also timed both ways: through a structlog bound
logger, and through the `LineLogger` the middleware uses.
"""

from __future__ import annotations

import logging
import os
import statistics
import time
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI
from prometheus_client import CollectorRegistry
from redis.asyncio import Redis
from starlette.types import ASGIApp, Message

from patterns.cache import Cache, CacheSpec
from patterns.cache.edge import EdgeEntry, MemoryHitMiddleware
from patterns.errors import install_error_handlers
from patterns.observability.logging import LineLogger, configure_logging, get_logger, reset_logging
from patterns.observability.metrics import HttpMetrics
from patterns.observability.middleware import ACCESS_LOGGER, install_observability
from patterns.observability.request_id import RequestIdMiddleware
from patterns.validation import BodySizeLimitMiddleware, SingleValuedQueryMiddleware
from reference_app.main import NO_OTEL

PATH = "/ping"
BODY = b'{"ping":"pong"}'
SPEC = CacheSpec("floor.layers", ttl=3600, memory_ttl=3600)
# Each variant adds what the one before it has and one layer more.
LAYERS = (
    "/ping, FastAPI's defaults",
    "FastAPI's OpenTelemetry check off",
    "+ request id",
    "+ query and body checks",
    "+ metrics",
    "+ access line",
    "featured's hit: the same, answered before routing",
)


def _app(depth: int, cache: Cache) -> FastAPI:
    app = FastAPI(telemetry=None if depth < 1 else NO_OTEL)
    install_error_handlers(app)

    @app.get(PATH)
    async def ping() -> dict[str, str]:
        return {"ping": "pong"}

    if depth >= 6:
        app.add_middleware(
            MemoryHitMiddleware, cache_of=lambda _scope: cache, entries={PATH: EdgeEntry(SPEC)}
        )
    if depth >= 4:
        metrics = HttpMetrics(CollectorRegistry())
        install_observability(app, metrics=metrics, metrics_path=None, access_log=depth >= 5)
    if depth >= 3:
        app.add_middleware(BodySizeLimitMiddleware, max_bytes=1_048_576)
        app.add_middleware(SingleValuedQueryMiddleware)
    if depth >= 2:
        app.add_middleware(RequestIdMiddleware)
    return app


async def _drive(app: ASGIApp, n: int) -> float:
    """Microseconds per request over `n` requests."""
    statuses: list[int] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    start = time.perf_counter()
    for _ in range(n):
        scope: dict[str, Any] = {
            "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
            "scheme": "http", "path": PATH, "raw_path": PATH.encode(), "root_path": "",
            "query_string": b"", "headers": [(b"host", b"floor")],
            "client": ("127.0.0.1", 5000), "server": ("floor", 80),
        }  # fmt: skip
        await app(scope, receive, send)
    elapsed = time.perf_counter() - start
    if statuses.count(200) != n:
        raise RuntimeError(f"layers: {n - statuses.count(200)} of {n} answers were not a 200")
    return elapsed / n * 1e6


def _per_call(call: Callable[[], None], n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        call()
    return (time.perf_counter() - start) / n * 1e6


async def layer_costs(rounds: int, requests: int = 2000) -> dict[str, float]:
    """Median µs per request of each variant in `LAYERS`, then of the access line alone."""
    with open(os.devnull, "w") as devnull:  # noqa: ASYNC230 (before any request is timed)
        configure_logging(json=True, stream=devnull, level="INFO")
        try:
            cache = Cache(Redis())  # never reached: the hit is read from the memory tier
            cache.memory.set(cache.key(SPEC), BODY, 3600)
            apps = {name: _app(depth, cache) for depth, name in enumerate(LAYERS)}
            bound, line = get_logger(ACCESS_LOGGER), LineLogger(ACCESS_LOGGER)
            fields = {"method": "GET", "path": PATH, "route": PATH, "status": 200}
            lines: dict[str, Callable[[], None]] = {
                "access line, structlog bound logger": lambda: bound.info(
                    "http_request", **fields, duration_ms=0.01
                ),
                "access line, LineLogger": lambda: line.log(
                    logging.INFO, "http_request", {**fields, "duration_ms": 0.01}
                ),
            }
            times: dict[str, list[float]] = {name: [] for name in [*apps, *lines]}
            for app in apps.values():
                await _drive(app, 200)  # the middleware stack built, caches warm
            for _ in range(rounds):
                for name, app in apps.items():
                    times[name].append(await _drive(app, requests))
                for name, call in lines.items():
                    times[name].append(_per_call(call, requests))
        finally:
            reset_logging()
    return {name: statistics.median(values) for name, values in times.items()}


def print_layer_costs(costs: dict[str, float], rounds: int) -> None:
    print(f"the kit's layers on a /ping, in process (median of {rounds} interleaved rounds):")
    before: float | None = None
    for name in LAYERS:
        micros = costs[name]
        step = "" if before is None else f"  ({micros - before:+6.1f})"
        print(f"  {name:52} {micros:7.1f} us{step}")
        before = micros
    for name in [n for n in costs if n not in LAYERS]:
        print(f"  {name:52} {costs[name]:7.1f} us")
