"""Request bodies over the limit are refused with 413 in the envelope, before being read whole."""

from __future__ import annotations

from collections.abc import AsyncIterator

from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient

from patterns.errors import install_error_handlers
from patterns.observability.request_id import RequestIdMiddleware
from patterns.validation import BodySizeLimitMiddleware

LIMIT = 1000


def _app() -> FastAPI:
    app = FastAPI()
    install_error_handlers(app)
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=LIMIT)
    app.add_middleware(RequestIdMiddleware)

    @app.post("/echo")
    async def echo(body: dict[str, str]) -> dict[str, int]:
        return {"keys": len(body)}

    return app


async def _chunks(total: int) -> AsyncIterator[bytes]:
    yield b'{"a": "'
    for _ in range(total // 100):
        yield b"x" * 100
    yield b'"}'


async def test_declared_length_over_the_limit_is_refused_at_once() -> None:
    async with AsyncClient(transport=ASGITransport(app=_app()), base_url="http://t") as c:
        r = await c.post("/echo", json={"a": "x" * (LIMIT + 1)})
    assert r.status_code == 413
    assert r.json()["error"]["code"] == "payload_too_large"
    assert r.json()["error"]["request_id"] == r.headers["X-Request-ID"]


async def test_streamed_body_over_the_limit_is_refused() -> None:
    async with AsyncClient(transport=ASGITransport(app=_app()), base_url="http://t") as c:
        r = await c.post(
            "/echo", content=_chunks(LIMIT * 3), headers={"Content-Type": "application/json"}
        )
    assert r.status_code == 413
    assert r.json()["error"]["code"] == "payload_too_large"


async def test_bodies_within_the_limit_pass() -> None:
    async with AsyncClient(transport=ASGITransport(app=_app()), base_url="http://t") as c:
        r = await c.post(
            "/echo", content=_chunks(500), headers={"Content-Type": "application/json"}
        )
    assert r.status_code == 200
    assert r.json() == {"keys": 1}
