"""The kit's app with a fixed delay before every request: a deliberately slowed deployment, for
the test that `--compare` catches a slower run (tests/integration/test_load_workflows.py)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from fastapi import FastAPI, Request, Response

from reference_app.main import create_app as create_kit_app

DELAY_S = 0.04


def create_app() -> FastAPI:
    app = create_kit_app()

    @app.middleware("http")
    async def slow_down(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        await asyncio.sleep(DELAY_S)
        return await call_next(request)

    return app
