"""Liveness and readiness probes: ready means the database and Redis both answer."""

from __future__ import annotations

import asyncio
from typing import Literal

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel
from sqlalchemy import text

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
