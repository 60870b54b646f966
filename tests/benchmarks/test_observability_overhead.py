"""Benchmark: requests/s with and without the metrics and logging middleware (guide: "Prometheus
Metrics", "Structured Logging").

Run with `pytest tests/benchmarks/test_observability_overhead.py --benchmark-only`. The app is
called in-process through ASGI (no network, no HTTP parsing), so the figures isolate what the
middleware adds; over a real socket the same cost is a smaller share. Every variant has the same
logging set-up (JSON to /dev/null) and the same request-id middleware; they differ only in what
`ObservabilityMiddleware` does. The summary line after the run gives each variant's requests/s
and its ratio to the bare app.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from fastapi import FastAPI
from prometheus_client import CollectorRegistry
from pytest_benchmark.fixture import BenchmarkFixture
from starlette.types import Message

from patterns.errors import install_error_handlers
from patterns.observability.logging import KIT_HANDLER, configure_logging, reset_logging
from patterns.observability.metrics import HttpMetrics
from patterns.observability.middleware import install_observability
from patterns.observability.request_id import RequestIdMiddleware

pytestmark = pytest.mark.benchmark(group="observability-overhead", min_rounds=20)
BATCH = 200  # requests per benchmark round
OTHER_ROUTES = 24  # about as many routes as the reference app, so route matching costs its share
VARIANTS = {
    "bare": {"observe": False, "metrics": False, "access_log": False},
    "metrics+logging": {"observe": True, "metrics": True, "access_log": True},
    "metrics only": {"observe": True, "metrics": True, "access_log": False},
    "logging only": {"observe": True, "metrics": False, "access_log": True},
}
_results: dict[str, float] = {}


def _build(observe: bool, metrics: bool, access_log: bool) -> FastAPI:
    app = FastAPI()
    install_error_handlers(app)
    if observe:
        install_observability(
            app,
            metrics=HttpMetrics(CollectorRegistry()) if metrics else None,
            metrics_path=None,
            access_log=access_log,
        )
    app.add_middleware(RequestIdMiddleware)

    for n in range(OTHER_ROUTES):

        async def other(item_id: int) -> dict[str, int]:
            return {"id": item_id}

        app.add_api_route(f"/api/v1/other{n}/{{item_id}}", other, methods=["GET"])

    @app.get("/api/v1/things/{thing_id}")
    async def get_thing(thing_id: int) -> dict[str, int]:
        return {"id": thing_id}

    return app


async def _request(app: FastAPI, thing_id: int) -> int:
    path = f"/api/v1/things/{thing_id}"
    scope: dict[str, Any] = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"bench")],
        "client": ("127.0.0.1", 5000),
        "server": ("bench", 80),
    }
    status = 0

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await app(scope, receive, send)
    return status


@pytest.fixture(scope="module", autouse=True)
def _logging_to_devnull(request: pytest.FixtureRequest) -> Iterator[None]:
    with open(os.devnull, "w") as devnull:
        configure_logging(json=True, stream=devnull, level="INFO")
        yield
        reset_logging()
    if _results.get("bare"):
        bare = _results["bare"]
        parts = [f"{name} {rps:,.0f} req/s ({rps / bare:.2f}x)" for name, rps in _results.items()]
        reporter = request.config.pluginmanager.get_plugin("terminalreporter")
        capture = request.config.pluginmanager.get_plugin("capturemanager")
        if reporter is not None and capture is not None:
            # Output capture is on during fixture teardown; the summary must reach the terminal.
            with capture.global_and_fixture_disabled():
                reporter.write_line("\nobservability overhead: " + "; ".join(parts))


@contextmanager
def _only_the_kits_handlers() -> Iterator[None]:
    """pytest puts its own capture handlers on the root logger during a test; each formats
    every record again (the event dict through `repr`), which a server never pays. They are
    taken off for the timed part, so the figures are the production pipeline's."""
    root = logging.getLogger()
    foreign = [h for h in root.handlers if not getattr(h, KIT_HANDLER, False)]
    for handler in foreign:
        root.removeHandler(handler)
    try:
        yield
    finally:
        for handler in foreign:
            root.addHandler(handler)


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_bench_requests_per_second(benchmark: BenchmarkFixture, variant: str) -> None:
    app = _build(**VARIANTS[variant])
    loop = asyncio.new_event_loop()

    async def batch() -> list[int]:
        return [await _request(app, thing_id) for thing_id in range(1, BATCH + 1)]

    try:
        with _only_the_kits_handlers():
            statuses = benchmark(lambda: loop.run_until_complete(batch()))
    finally:
        loop.close()
    assert statuses == [200] * BATCH
    assert benchmark.stats is not None
    requests_per_s = BATCH / benchmark.stats.stats.median
    _results[variant] = requests_per_s
    benchmark.extra_info["requests_per_s"] = round(requests_per_s)
    if "bare" in _results:
        benchmark.extra_info["ratio_to_bare"] = round(requests_per_s / _results["bare"], 3)
