"""One pure ASGI middleware for request metrics, the access line and the unhandled-exception log.

Realises the guide's "Prometheus Metrics" and "Structured Logging" per request. Pure ASGI rather
than `BaseHTTPMiddleware`: no extra task per request, and the request id context set by
`RequestIdMiddleware` (which must wrap this one) is visible to every line logged here.

What counts as an error (`app_errors_total`): an unhandled exception (typed by its class) and any
5xx response (typed by the exception class whose handler rendered it, else `http_<status>`).
4xx responses are the client's errors; they show in the histogram's `status` label instead.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from patterns.observability.logging import LineLogger, get_logger, mark_logged
from patterns.observability.metrics import (
    ERROR_TYPE_SCOPE_KEY,
    HttpMetrics,
    RouteTemplates,
    metrics_endpoint,
    normalise_method,
    record_error_types,
)

# Probes and scrapes would dominate both the histogram and the log; they get neither.
DEFAULT_EXCLUDED_PATHS: tuple[str, ...] = ("/metrics", "/health/")
ACCESS_LOGGER = "patterns.observability.access"


class ObservabilityMiddleware:
    """Time each HTTP request, label it by route template, log one access line, and log an
    unhandled exception once with its traceback (see `DropAlreadyLoggedExceptions`)."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        metrics: HttpMetrics | None = None,
        access_log: bool = True,
        excluded_paths: Sequence[str] = DEFAULT_EXCLUDED_PATHS,
    ) -> None:
        self.app = app
        self.metrics = metrics
        self.access_log = access_log
        # An entry ending in "/" excludes everything under it; any other entry, that path only.
        self._excluded_exact = frozenset(p for p in excluded_paths if not p.endswith("/"))
        self._excluded_prefixes = tuple(p for p in excluded_paths if p.endswith("/"))
        self._templates = RouteTemplates()
        self._log = get_logger(ACCESS_LOGGER)
        self._access = LineLogger(ACCESS_LOGGER, source=__file__, function="_access_line")

    def _excluded(self, path: str) -> bool:
        return path in self._excluded_exact or path.startswith(self._excluded_prefixes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        root_path = scope.get("root_path", "")
        path: str = scope["path"]
        if root_path and path.startswith(root_path):
            path = path[len(root_path) :]
        if self._excluded(path):
            await self.app(scope, receive, send)
            return

        # The app as it is on the way in: a mounted sub-app replaces scope["app"] further down.
        app_routes = getattr(scope.get("app"), "routes", ())
        method = normalise_method(scope["method"])
        metrics = self.metrics
        in_progress = metrics.in_progress.labels(method) if metrics is not None else None
        status = 500
        failure: Exception | None = None

        async def send_observing(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        if in_progress is not None:
            in_progress.inc()
        start = time.perf_counter()
        try:
            await self.app(scope, receive, send_observing)
        except Exception as exc:
            failure = exc
            raise
        finally:
            elapsed = time.perf_counter() - start
            route = self._templates.resolve(app_routes, scope["method"], path)
            error_type: str | None = None
            if failure is not None:
                # The request failed whatever was already sent: count it a 500, log it here with
                # the request's context, and mark it so the server's own log of it is dropped.
                status = 500
                error_type = type(failure).__name__
                self._log.error(
                    "unhandled_exception",
                    exc_info=failure,
                    error_type=error_type,
                    method=scope["method"],
                    path=path,
                    route=route,
                )
                mark_logged(failure)
            elif status >= 500:
                error_type = scope.get(ERROR_TYPE_SCOPE_KEY) or f"http_{status}"
            if metrics is not None and in_progress is not None:
                in_progress.dec()
                metrics.duration.labels(method, route, str(status)).observe(elapsed)
                if error_type is not None:
                    metrics.errors.labels(error_type, route).inc()
            if self.access_log:
                self._access_line(scope["method"], path, route, status, elapsed)

    def _access_line(self, method: str, path: str, route: str, status: int, elapsed: float) -> None:
        level = logging.ERROR if status >= 500 else logging.INFO
        if not self._access.enabled_for(level):
            return
        fields: dict[str, Any] = {
            "method": method,
            "path": path,
            "route": route,
            "status": status,
            "duration_ms": round(elapsed * 1000, 2),
        }
        # Path only, no query string: queries carry tokens more often than paths do.
        self._access.log(level, "http_request", fields)


def install_observability(
    app: FastAPI,
    *,
    metrics: HttpMetrics | None,
    metrics_path: str | None = "/metrics",
    access_log: bool = True,
    excluded_paths: Sequence[str] = DEFAULT_EXCLUDED_PATHS,
) -> None:
    """Add the middleware, the `/metrics` route and the error-type tagging to `app`.

    Call after the exception handlers are installed (their types are recorded) and before the
    request-id middleware is added (it must be the outer one, so the id is bound here).
    """
    record_error_types(app)
    app.add_middleware(
        ObservabilityMiddleware,
        metrics=metrics,
        access_log=access_log,
        excluded_paths=excluded_paths,
    )
    if metrics_path:
        app.add_route(metrics_path, metrics_endpoint(), methods=["GET"], include_in_schema=False)
