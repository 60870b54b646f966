"""The error envelope: every failure a client can provoke has one shape and leaks nothing."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from fastapi import FastAPI, HTTPException
from httpx import ASGITransport, AsyncClient, Response
from pydantic import BaseModel, Field
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from sqlalchemy import exc as sa_exc
from sqlalchemy.orm.exc import StaleDataError

from patterns.errors import BusinessRuleError, NotFoundError, install_error_handlers
from patterns.observability.request_id import RequestIdMiddleware


class Signup(BaseModel):
    email: str
    password: str = Field(min_length=12)


def _app() -> FastAPI:
    app = FastAPI()
    install_error_handlers(app)
    app.add_middleware(RequestIdMiddleware)

    @app.get("/missing")
    async def missing() -> None:
        raise NotFoundError("Item 7 not found.")

    @app.get("/http")
    async def http() -> None:
        raise HTTPException(status_code=418, detail="I'm a teapot")

    @app.get("/business")
    async def business() -> None:
        raise BusinessRuleError("Insufficient stock for item 3.", code="insufficient_stock")

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("password=hunter2 at db.internal:5432")

    @app.post("/signup")
    async def signup(body: Signup) -> dict[str, str]:
        return {"email": body.email}

    return app


@pytest.fixture
async def api() -> AsyncIterator[AsyncClient]:
    transport = ASGITransport(app=_app(), raise_app_exceptions=False)
    async with AsyncClient(transport=transport, base_url="http://t") as c:
        yield c


def _envelope(body: dict[str, object]) -> dict[str, object]:
    assert set(body) == {"error"}
    err = body["error"]
    assert isinstance(err, dict)
    assert {"code", "message", "request_id"} <= set(err)
    return err


async def test_app_error_renders_its_status_and_code(api: AsyncClient) -> None:
    r = await api.get("/missing")
    assert r.status_code == 404
    err = _envelope(r.json())
    assert err["code"] == "not_found"
    assert err["message"] == "Item 7 not found."


async def test_business_error_carries_its_own_code(api: AsyncClient) -> None:
    r = await api.get("/business")
    assert r.status_code == 409
    assert _envelope(r.json())["code"] == "insufficient_stock"


async def test_http_exception_and_unknown_route_use_the_envelope(api: AsyncClient) -> None:
    r = await api.get("/http")
    assert r.status_code == 418
    assert _envelope(r.json())["message"] == "I'm a teapot"
    r = await api.get("/no-such-route")
    assert r.status_code == 404
    assert _envelope(r.json())["code"] == "not_found"
    r = await api.delete("/missing")
    assert r.status_code == 405
    assert _envelope(r.json())["code"] == "method_not_allowed"


async def test_validation_error_lists_fields_without_echoing_input(api: AsyncClient) -> None:
    r = await api.post("/signup", json={"email": "a@b.c", "password": "hunt2"})
    assert r.status_code == 422
    err = _envelope(r.json())
    assert err["code"] == "validation_error"
    details = err["details"]
    assert isinstance(details, list)
    assert details[0]["loc"] == ["body", "password"]
    assert set(details[0]) == {"loc", "msg", "type"}
    assert "hunt2" not in r.text


async def test_malformed_json_is_a_422_in_the_envelope(api: AsyncClient) -> None:
    r = await api.post(
        "/signup", content=b'{"email": "x', headers={"Content-Type": "application/json"}
    )
    assert r.status_code == 422
    assert _envelope(r.json())["code"] == "validation_error"


@pytest.mark.parametrize(
    "body",
    [b'{"email": "\xff\xfe"}', b"[" * 100_000 + b"]" * 100_000],
    ids=["invalid-utf8", "nested-past-the-recursion-limit"],
)
async def test_undecodable_body_is_a_400_in_the_envelope(api: AsyncClient, body: bytes) -> None:
    r = await api.post("/signup", content=body, headers={"Content-Type": "application/json"})
    assert r.status_code == 400
    assert _envelope(r.json())["code"] == "bad_request"


async def test_openapi_documents_the_undecodable_body_400_on_routes_with_a_body() -> None:
    schema = _app().openapi()
    bad_body = schema["paths"]["/signup"]["post"]["responses"]["400"]
    ref = bad_body["content"]["application/json"]["schema"]["$ref"]
    assert ref == "#/components/schemas/ErrorEnvelope"
    envelope = schema["components"]["schemas"]["ErrorEnvelope"]
    assert envelope["required"] == ["error"]
    assert schema["components"]["schemas"]["ErrorBody"]["required"] == ["code", "message"]
    assert "400" not in schema["paths"]["/missing"]["get"]["responses"]


async def test_unexpected_exception_is_a_500_that_leaks_nothing(api: AsyncClient) -> None:
    r = await api.get("/boom", headers={"X-Request-ID": "trace-123"})
    assert r.status_code == 500
    err = _envelope(r.json())
    assert err == {
        "code": "internal_error",
        "message": "Internal server error.",
        "request_id": "trace-123",
    }
    assert "hunter2" not in r.text
    assert r.headers["X-Request-ID"] == "trace-123"


async def test_request_id_is_generated_echoed_and_sanitised(api: AsyncClient) -> None:
    r = await api.get("/missing")
    generated = r.headers["X-Request-ID"]
    assert len(generated) == 32
    assert _envelope(r.json())["request_id"] == generated
    r = await api.get("/missing", headers={"X-Request-ID": "abc-123"})
    assert r.headers["X-Request-ID"] == "abc-123"
    r = await api.get("/missing", headers={"X-Request-ID": "bad id\twith spaces"})
    assert r.headers["X-Request-ID"] != "bad id\twith spaces"
    assert len(r.headers["X-Request-ID"]) == 32


def _failing_app(exc: Exception) -> FastAPI:
    app = FastAPI()
    install_error_handlers(app)
    app.add_middleware(RequestIdMiddleware)

    @app.get("/work")
    async def work() -> None:
        raise exc

    return app


async def _work(exc: Exception) -> Response:
    """The response a client gets when `/work` raises `exc`."""
    transport = ASGITransport(app=_failing_app(exc), raise_app_exceptions=False)
    async with AsyncClient(transport=transport, base_url="http://t") as c:
        return await c.get("/work")


@pytest.mark.parametrize(
    "exc",
    [
        sa_exc.OperationalError("SELECT 1", {}, ConnectionRefusedError("refused")),
        sa_exc.InterfaceError("SELECT 1", {}, Exception("connection is closed")),
        sa_exc.TimeoutError("QueuePool limit reached"),
        RedisConnectionError("Error 111 connecting"),
        RedisTimeoutError("Timeout reading from socket"),
        ConnectionResetError("reset by peer"),
        TimeoutError("connect timed out"),
    ],
    ids=[
        "db-refused",
        "db-closed",
        "pool-timeout",
        "redis-refused",
        "redis-timeout",
        "reset",
        "connect-timeout",
    ],
)
async def test_a_backing_service_outage_is_a_503_to_retry_not_a_500(exc: Exception) -> None:
    r = await _work(exc)
    assert r.status_code == 503
    assert _envelope(r.json())["code"] == "service_unavailable"
    assert r.headers["Retry-After"] == "1"
    assert "refused" not in r.text


async def test_a_database_error_that_is_not_an_outage_stays_a_500() -> None:
    exc = sa_exc.IntegrityError("INSERT", {}, Exception("duplicate key"))
    r = await _work(exc)
    assert r.status_code == 500
    assert "duplicate" not in r.text


class _DriverError(Exception):
    def __init__(self, sqlstate: str) -> None:
        super().__init__(f"driver error {sqlstate}")
        self.sqlstate = sqlstate


@pytest.mark.parametrize(
    "exc",
    [
        sa_exc.DBAPIError("UPDATE", {}, _DriverError("40P01")),  # deadlock detected
        sa_exc.DBAPIError("UPDATE", {}, _DriverError("40001")),  # serialization failure
        StaleDataError("UPDATE statement on table 'items' expected to update 1 row(s)"),
    ],
    ids=["deadlock", "serialization", "stale-data"],
)
async def test_a_write_that_lost_to_a_concurrent_one_is_a_409_to_retry(exc: Exception) -> None:
    r = await _work(exc)
    assert r.status_code == 409
    assert _envelope(r.json())["code"] == "write_conflict"
    assert "items" not in r.text
