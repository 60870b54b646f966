"""Liveness and readiness probes: ready means the database and Redis both answer."""

from __future__ import annotations

import asyncio
from typing import Literal

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel
from sqlalchemy import text
from starlette.types import ASGIApp, Receive, Scope, Send

from patterns.errors import ServiceUnavailableError, error_responses
from patterns.responses import json_body
from reference_app.core.state import app_state

router = APIRouter(prefix="/health", tags=["health"])
CHECK_TIMEOUT_S = 2.0


class HealthStatus(BaseModel):
    status: Literal["ok"]
    checks: dict[str, Literal["ok"]] = {}


# The answer never changes: written once, sent as bytes (a probe costs what a bare route does).
_LIVE_BODY = HealthStatus(status="ok").model_dump_json().encode()


_PROBE = frozenset({"GET", "HEAD"})


class LivenessMiddleware:
    """Answer `GET` (and `HEAD`) `/health/live` before routing: a probe asked every few seconds
    by every orchestrator costs what a bare route does (docs/performance.md, "Hot paths"). Add
    it inside the request-id middleware (the answer carries its `X-Request-ID`); the route below
    stays for the OpenAPI schema and for an app without this middleware."""

    def __init__(self, app: ASGIApp, path: str = "/health/live") -> None:
        self.app = app
        self.path = path
        self._headers = [
            (b"content-length", str(len(_LIVE_BODY)).encode("latin-1")),
            (b"content-type", b"application/json"),
        ]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != self.path or scope["method"] not in _PROBE:
            await self.app(scope, receive, send)
            return
        await send({"type": "http.response.start", "status": 200, "headers": list(self._headers)})
        # A HEAD (load balancers often probe with one) gets the GET's headers and no body.
        body = _LIVE_BODY if scope["method"] == "GET" else b""
        await send({"type": "http.response.body", "body": body})


@router.get("/live", response_model=HealthStatus)
async def live() -> Response:
    """The process is up and serving."""
    return json_body(_LIVE_BODY)


async def _check_database(request: Request) -> None:
    async with app_state(request.app).database.engine.connect() as conn:
        await conn.execute(text("SELECT 1"))


async def _check_redis(request: Request) -> None:
    await app_state(request.app).redis.client.ping()


@router.get("/ready", response_model=HealthStatus, responses=error_responses(503))
async def ready(request: Request) -> HealthStatus:
    """The database and Redis answer within two seconds each; otherwise 503 naming the failure."""
    checks = {"database": _check_database(request), "redis": _check_redis(request)}
    results = await asyncio.gather(
        *(asyncio.wait_for(c, CHECK_TIMEOUT_S) for c in checks.values()), return_exceptions=True
    )
    failed = [
        {"check": name, "error": type(res).__name__}
        for name, res in zip(checks, results, strict=True)
        if isinstance(res, BaseException)
    ]
    if failed:
        names = ", ".join(f["check"] for f in failed)
        raise ServiceUnavailableError(f"Not ready: {names} unavailable.", details=failed)
    return HealthStatus(status="ok", checks=dict.fromkeys(checks, "ok"))
