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
from collections.abc import Awaitable, Callable, Iterable, Mapping, MutableMapping
from typing import Any

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram, multiprocess
from prometheus_client.exposition import choose_encoder
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Match, Mount

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


def _path_format(route: BaseRoute) -> str | None:
    fmt = getattr(route, "path_format", None)
    return fmt if isinstance(fmt, str) else None


def _match_template(
    routes: Iterable[BaseRoute], scope: MutableMapping[str, Any], prefix: str
) -> str | None:
    """Walk the routing tree the way the router does, joining mount prefixes and the route."""
    partial: str | None = None
    for route in routes:
        match, child_scope = route.matches(scope)
        if match is Match.NONE:
            continue
        fmt = _path_format(route)
        if isinstance(route, Mount):
            mount_prefix = prefix + (fmt or "").removesuffix("/{path}")
            inner = _match_template(route.routes, {**scope, **child_scope}, mount_prefix)
            found: str | None = inner or f"{mount_prefix}/{{path}}"
        else:
            found = prefix + fmt if fmt is not None else None
        if match is Match.FULL:
            return found
        partial = partial or found
    return partial


def route_template(scope: Mapping[str, Any], entry_scope: Mapping[str, Any]) -> str:
    """The template of the route that served the request, or `UNMATCHED`.

    `scope` is the request's scope after the app ran (the router stored the matched route in
    it); `entry_scope` holds what the middleware saw on the way in (`app`, `path`, `root_path`).
    Without mounts the stored route's template is the answer, at no cost; when a mount was
    crossed (the root path grew), the stored route is the innermost one and its template lacks
    the mount's prefix, so the template is rebuilt by matching from the top.
    """
    route = scope.get("route")
    if route is None:
        return UNMATCHED
    root = entry_scope.get("root_path", "")
    if scope.get("root_path", "") == root:
        return _path_format(route) or UNMATCHED
    app = entry_scope.get("app")
    routes = getattr(app, "routes", None)
    if not routes:
        return UNMATCHED
    probe = {
        "type": "http",
        "path": entry_scope["path"],
        "root_path": root,
        "method": entry_scope.get("method", "GET"),
    }
    return _match_template(routes, probe, "") or UNMATCHED


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
