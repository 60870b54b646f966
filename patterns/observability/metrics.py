"""Request metrics labelled by route template, and `/metrics` (guide: "Prometheus Metrics").

The guide labels its histogram by `endpoint`; the kit keeps that label name and fills it with the
matched route's *template* (`/api/v1/items/{item_id}`), never the raw path: one label set per
route instead of one per id, which is what keeps a Prometheus server alive.

Multiprocess mode (several uvicorn workers) is prometheus-client's own: set
`PROMETHEUS_MULTIPROC_DIR` to an empty directory before the processes start; every worker then
writes its samples to files there and `/metrics` merges them (`MultiProcessCollector`).
"""

from __future__ import annotations

import inspect
import os
import re
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any, NamedTuple

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram, multiprocess
from prometheus_client.exposition import choose_encoder
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount

UNMATCHED = "<unmatched>"
# Set on the scope by the wrapped exception handlers, so a 5xx rendered from an AppError is
# counted under its class name rather than a bare status.
ERROR_TYPE_SCOPE_KEY = "kit.error_type"
# Anything else a client sends as a method becomes "other": a method is a label, and labels
# must stay bounded whatever the client does.
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE"})
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


class HttpMetrics:
    """The request metrics of one app, registered on `registry` (the global one by default)."""

    def __init__(self, registry: CollectorRegistry | None = REGISTRY) -> None:
        self.duration = Histogram(
            "http_request_duration_seconds",
            "HTTP request duration in seconds, by method, route template and status.",
            ["method", "endpoint", "status"],
            registry=registry,
        )
        self.in_progress = Gauge(
            "http_requests_in_progress",
            "HTTP requests being served, by method.",
            ["method"],
            registry=registry,
            # Summed over live workers; a dead worker's share is dropped by mark_process_dead.
            multiprocess_mode="livesum",
        )
        self.errors = Counter(
            "app_errors_total",
            "Server-side errors: unhandled exceptions and 5xx responses, by type and route.",
            ["error_type", "endpoint"],
            registry=registry,
        )


def normalise_method(method: str) -> str:
    return method if method in KNOWN_METHODS else "other"


class _Entry(NamedTuple):
    regex: re.Pattern[str]
    template: str
    methods: frozenset[str] | None
    mounted: Sequence[BaseRoute] | None  # a Mount's routes, matched against the remaining path


def _flatten(routes: Sequence[BaseRoute]) -> list[_Entry]:
    """The routes as the router sees them, each with its full path template.

    Recent FastAPI keeps included routers as lazy branches whose routes hold only their
    router-relative path; `iter_route_contexts` (where it exists) yields them with the prefix
    applied. Older versions list full-path routes directly.
    """
    try:
        from fastapi.routing import iter_route_contexts
    except ImportError:  # FastAPI before the lazy include_router
        candidates: Iterable[Any] = routes
    else:
        candidates = iter_route_contexts(routes)
    entries: list[_Entry] = []
    for candidate in candidates:
        regex = getattr(candidate, "path_regex", None)
        template = getattr(candidate, "path_format", None)
        if not isinstance(regex, re.Pattern) or not isinstance(template, str):
            continue  # a Host route, or something with no path
        original = getattr(candidate, "original_route", candidate)
        methods = getattr(candidate, "methods", None)
        entries.append(
            _Entry(
                regex=regex,
                template=template,
                methods=frozenset(methods) if methods else None,
                mounted=original.routes if isinstance(original, Mount) else None,
            )
        )
    return entries


class RouteTemplates:
    """Finds the template of the route a request matched, the way the router matched it.

    The scope's own `"route"` cannot be trusted for this: plain Starlette routes do not set it
    under recent FastAPI, and routes of an included router carry their path without the prefix.
    So the path is matched against the app's flattened routes, after the response is sent (the
    client does not wait for it). The table is rebuilt when the number of routes changes.
    """

    def __init__(self) -> None:
        self._entries: list[_Entry] = []
        self._built_for: tuple[int, int] | None = None
        self._mounted: dict[int, RouteTemplates] = {}

    def _table(self, routes: Sequence[BaseRoute]) -> list[_Entry]:
        key = (id(routes), len(routes))
        if key != self._built_for:
            self._entries = _flatten(routes)
            self._mounted = {}
            self._built_for = key
        return self._entries

    def resolve(self, routes: Sequence[BaseRoute], method: str, path: str) -> str:
        """The template for `method path` (the path relative to the app's root path)."""
        partial: str | None = None
        for entry in self._table(routes):
            match = entry.regex.match(path)
            if match is None:
                continue
            if entry.mounted is not None:
                prefix = entry.template.removesuffix("/{path}")
                inner = self._mounted.setdefault(id(entry.mounted), RouteTemplates())
                found = inner.resolve(entry.mounted, method, "/" + match.group("path"))
                return prefix + found if found != UNMATCHED else entry.template
            if entry.methods is None or method in entry.methods:
                return entry.template
            partial = partial or entry.template  # matched the path, not the method: a 405
        return partial or UNMATCHED


def multiprocess_dir() -> str | None:
    """The multiprocess directory, when prometheus-client runs in multiprocess mode."""
    return os.environ.get(MULTIPROC_ENV) or None


def render_metrics(
    accept: str | None = None, registry: CollectorRegistry = REGISTRY
) -> tuple[bytes, str]:
    """The exposition body and its content type (OpenMetrics when the scraper asks for it).

    In multiprocess mode the per-process registry knows only this worker; a fresh registry with
    a `MultiProcessCollector` reads every worker's files instead (prometheus-client's recipe).
    """
    if multiprocess_dir():
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    encoder, content_type = choose_encoder(accept or "")
    return encoder(registry), content_type


def metrics_endpoint(registry: CollectorRegistry = REGISTRY) -> Callable[[Request], Response]:
    """A route handler for `/metrics`. Synchronous on purpose: Starlette runs it in the thread
    pool, so reading the multiprocess files never blocks the event loop."""

    def metrics(request: Request) -> Response:
        body, content_type = render_metrics(request.headers.get("accept"), registry)
        return Response(body, media_type=content_type)

    return metrics


def mark_process_dead_if_multiprocess(pid: int | None = None) -> None:
    """Drop this worker's live gauges (in-progress requests) when it exits, so `livesum` does
    not keep counting a dead process. A no-op outside multiprocess mode."""
    if multiprocess_dir():
        multiprocess.mark_process_dead(pid if pid is not None else os.getpid())  # type: ignore[no-untyped-call]


def _tagging(handler: Callable[..., Any]) -> Callable[[Request, Exception], Awaitable[Any]]:
    is_async = inspect.iscoroutinefunction(handler)

    async def tagged(request: Request, exc: Exception) -> Any:
        request.scope[ERROR_TYPE_SCOPE_KEY] = type(exc).__name__
        if is_async:
            return await handler(request, exc)
        return await run_in_threadpool(handler, request, exc)

    return tagged


def record_error_types(app: Starlette) -> None:
    """Wrap the app's registered exception handlers so the metrics middleware learns which
    exception class produced a 5xx it rendered (`ServiceUnavailableError`, not just "503").

    Call after the handlers are installed. The catch-all `Exception` handler is left alone: an
    unhandled exception reaches the middleware itself, with its real type.
    """
    for key, handler in list(app.exception_handlers.items()):
        if key is Exception or key == 500:
            continue
        app.exception_handlers[key] = _tagging(handler)


class PoolMetrics:
    """The database pool as gauges: connections in use, the pool's size and its overflow, and a
    counter of connections opened (churn), per process and
    summed over live workers (`livesum`), so a dashboard shows how close the pools run to full
    (the guide's "Connection Pooling").

    Labelled by pool, so that in multiprocess mode only a process that tracks a pool writes
    their files (an unlabelled gauge would leave one in every process that imports it, the
    server's parent included, where no shutdown marks it dead)."""

    def __init__(self, registry: CollectorRegistry | None = REGISTRY) -> None:
        self.checked_out = Gauge(
            "db_pool_checked_out_connections",
            "Database connections checked out of the pool (in use by a request or task).",
            ["pool"],
            registry=registry,
            multiprocess_mode="livesum",
        )
        self.size = Gauge(
            "db_pool_size_connections",
            "Connections the pool keeps open (pool_size, overflow not included).",
            ["pool"],
            registry=registry,
            multiprocess_mode="livesum",
        )
        self.overflow = Gauge(
            "db_pool_overflow_connections",
            "Connections open beyond the pool's size (closed again when returned).",
            ["pool"],
            registry=registry,
            multiprocess_mode="livesum",
        )
        # A steady load should open none: a rising count means the pool is too small for the
        # concurrency and every request past it starts a database backend.
        self.opened = Counter(
            "db_pool_connections_opened_total",
            "Database connections the pool opened.",
            ["pool"],
            registry=registry,
        )

    def track(self, engine: AsyncEngine, pool: str = "app") -> None:
        """Follow `engine`'s pool through its connect, checkout and checkin events."""
        checked_out = self.checked_out.labels(pool=pool)
        overflow = self.overflow.labels(pool=pool)
        opened = self.opened.labels(pool=pool)
        size = getattr(engine.sync_engine.pool, "size", None)
        pool_size = size() if callable(size) else 0
        self.size.labels(pool=pool).set(pool_size)
        in_use = 0

        def on_checkout(*_: Any) -> None:
            nonlocal in_use
            in_use += 1
            checked_out.inc()
            overflow.set(max(0, in_use - pool_size))

        def on_checkin(*_: Any) -> None:
            # A pool that is full closes a returned connection: what is past its size is overflow.
            nonlocal in_use
            in_use -= 1
            checked_out.dec()
            overflow.set(max(0, in_use - pool_size))

        overflow.set(0)
        event.listen(engine.sync_engine, "connect", lambda *_: opened.inc())
        event.listen(engine.sync_engine, "checkout", on_checkout)
        event.listen(engine.sync_engine, "checkin", on_checkin)
