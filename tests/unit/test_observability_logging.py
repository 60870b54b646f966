"""Structured logs: one JSON shape for every line, request ids, one access line, secrets removed."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import re
import secrets
import socket
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import httpx
import jwt
import pytest
import structlog
import uvicorn
from fastapi import FastAPI, Form, Request
from httpx import ASGITransport, AsyncClient
from pydantic import BaseModel

from patterns.errors import ServiceUnavailableError
from patterns.observability.logging import (
    REDACTED,
    LineLogger,
    add_timestamp,
    configure_logging,
    get_logger,
    redact_secrets,
    redact_text,
    render_json,
    reset_logging,
)
from patterns.observability.request_id import new_request_id, set_request_id
from reference_app.core.config import Settings
from reference_app.core.logging import wants_json
from reference_app.main import create_app

REQUIRED_KEYS = {"timestamp", "level", "event", "request_id"}


class Capture:
    """What the configured pipeline wrote to one stream."""

    def __init__(self) -> None:
        self.stream = io.StringIO()

    @property
    def text(self) -> str:
        return self.stream.getvalue()

    def lines(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.text.splitlines()]

    def events(self, event: str) -> list[dict[str, Any]]:
        return [line for line in self.lines() if line["event"] == event]


@pytest.fixture(autouse=True)
def _no_logging_left_behind() -> Iterator[None]:
    yield
    reset_logging()


@pytest.fixture
def capture() -> Capture:
    """JSON logs into a buffer. Create apps before asking for it: create_app sets logging up
    from its settings, which would replace this capture."""
    cap = Capture()
    configure_logging(json=True, stream=cap.stream, level="DEBUG")
    return cap


class Signup(BaseModel):
    email: str
    password: str


def _add_test_routes(app: FastAPI) -> None:
    """Routes that log the way careless code does; the real auth endpoints are built elsewhere."""
    log = get_logger("tests.routes")
    stdlib_log = logging.getLogger("tests.routes.stdlib")

    async def hello(request: Request) -> dict[str, str]:
        log.info("hello_from_structlog", user_agent=request.headers.get("user-agent"))
        stdlib_log.warning("hello from %s", "stdlib")
        return {"ok": "yes"}

    async def boom() -> None:
        raise RuntimeError("database said no to password=hunter2-in-a-traceback")

    async def unavailable() -> None:
        raise ServiceUnavailableError()

    async def signup(body: Signup) -> dict[str, str]:
        log.info("signup_received", body=body.model_dump())
        stdlib_log.info("signup payload %s", body.model_dump())
        log.info("signup_model", model=body)
        return {"email": body.email}

    async def login(
        username: Annotated[str, Form()], password: Annotated[str, Form()]
    ) -> dict[str, str]:
        access = jwt.encode({"sub": username, "typ": "access"}, "k" * 32, algorithm="HS256")
        refresh = secrets.token_urlsafe(32)
        log.info("login", form={"username": username, "password": password})
        log.info(f"issued {access}", access_token=access, refresh_token=refresh)
        return {"access_token": access, "refresh_token": refresh, "token_type": "bearer"}

    async def me(request: Request) -> dict[str, str]:
        log.info("headers_seen", headers=dict(request.headers))
        stdlib_log.info("auth header was %s", request.headers.get("authorization"))
        return {"ok": "yes"}

    for path, endpoint, methods in (
        ("/api/v1/test/hello", hello, ["GET"]),
        ("/api/v1/test/boom/{n}", boom, ["GET"]),
        ("/api/v1/test/unavailable", unavailable, ["GET"]),
        ("/api/v1/test/signup", signup, ["POST"]),
        ("/api/v1/test/login", login, ["POST"]),
        ("/api/v1/test/me", me, ["GET"]),
    ):
        app.add_api_route(path, endpoint, methods=methods)


@pytest.fixture
def kit_app() -> FastAPI:
    app = create_app(Settings(env="test"))
    _add_test_routes(app)
    return app


@pytest.fixture
async def api(kit_app: FastAPI) -> AsyncIterator[AsyncClient]:
    transport = ASGITransport(app=kit_app, raise_app_exceptions=False)
    async with AsyncClient(transport=transport, base_url="http://t") as client:
        yield client


async def test_every_line_is_json_with_request_id_level_event_and_timestamp(
    api: AsyncClient, capture: Capture
) -> None:
    seen_ids = set()
    for path in ("/api/v1/test/hello", "/api/v1/test/boom/1", "/nowhere", "/api/v1/test/hello"):
        r = await api.get(path)
        seen_ids.add(r.headers["X-Request-ID"])

    lines = capture.lines()  # raises if any line is not JSON
    assert lines
    for line in lines:
        assert set(line) >= REQUIRED_KEYS, line
    app_lines = [line for line in lines if line["logger"] != "httpx"]
    assert {line["request_id"] for line in app_lines} == seen_ids
    assert {line["event"] for line in app_lines} >= {
        "hello_from_structlog",
        "hello from stdlib",
        "http_request",
        "unhandled_exception",
    }


async def test_a_line_logged_in_a_request_carries_that_requests_id(
    api: AsyncClient, capture: Capture
) -> None:
    r = await api.get("/api/v1/test/hello", headers={"X-Request-ID": "req-42"})
    assert r.headers["X-Request-ID"] == "req-42"
    (structlog_line,) = capture.events("hello_from_structlog")
    (stdlib_line,) = capture.events("hello from stdlib")
    assert structlog_line["request_id"] == stdlib_line["request_id"] == "req-42"
    assert stdlib_line["logger"] == "tests.routes.stdlib"
    assert stdlib_line["level"] == "warning"


async def test_one_access_line_per_request_with_route_template_status_and_duration(
    api: AsyncClient, capture: Capture
) -> None:
    await api.get("/api/v1/test/boom/7")
    await api.get("/api/v1/test/hello")
    await api.get("/nowhere")
    await api.get("/health/live")

    access = capture.events("http_request")
    assert [(a["method"], a["route"], a["path"], a["status"]) for a in access] == [
        ("GET", "/api/v1/test/boom/{n}", "/api/v1/test/boom/7", 500),
        ("GET", "/api/v1/test/hello", "/api/v1/test/hello", 200),
        ("GET", "<unmatched>", "/nowhere", 404),
    ]
    assert [a["level"] for a in access] == ["error", "info", "info"]
    assert all(isinstance(a["duration_ms"], float) and a["duration_ms"] >= 0 for a in access)


async def test_error_response_request_id_matches_the_logged_error_and_its_traceback(
    api: AsyncClient, capture: Capture
) -> None:
    r = await api.get("/api/v1/test/boom/3")
    assert r.status_code == 500
    request_id = r.json()["error"]["request_id"]
    assert request_id == r.headers["X-Request-ID"]

    (error,) = capture.events("unhandled_exception")
    assert error["request_id"] == request_id
    assert error["level"] == "error"
    assert error["error_type"] == "RuntimeError"
    assert error["route"] == "/api/v1/test/boom/{n}"
    assert error["exception"].startswith("Traceback (most recent call last)")
    assert "RuntimeError: database said no" in error["exception"]
    assert sum("Traceback" in line for line in capture.text.splitlines()) == 1


async def test_a_5xx_app_error_has_its_access_line_under_the_same_request_id(
    api: AsyncClient, capture: Capture
) -> None:
    r = await api.get("/api/v1/test/unavailable")
    assert r.status_code == 503
    (access,) = capture.events("http_request")
    assert access["request_id"] == r.json()["error"]["request_id"]
    assert access["status"] == 503
    assert not capture.events("unhandled_exception")


async def test_passwords_and_issued_tokens_never_reach_the_log(
    api: AsyncClient, capture: Capture
) -> None:
    password = "Correct-Horse-Battery-9"
    r = await api.post("/api/v1/test/signup", json={"email": "a@b.co", "password": password})
    assert r.status_code == 200
    r = await api.post("/api/v1/test/login", data={"username": "a@b.co", "password": password})
    tokens = r.json()
    access, refresh = tokens["access_token"], tokens["refresh_token"]
    r = await api.get("/api/v1/test/me", headers={"Authorization": f"Bearer {access}"})
    assert r.status_code == 200
    await api.get("/api/v1/test/boom/1")

    text = capture.text
    for secret in (password, access, refresh, *access.split("."), "hunter2-in-a-traceback"):
        assert secret not in text
    # The lines were written, with the secrets replaced, not dropped.
    assert text.count(REDACTED) >= 8
    assert capture.events("signup_received")[0]["body"] == {
        "email": "a@b.co",
        "password": REDACTED,
    }
    assert capture.events("headers_seen")[0]["headers"]["authorization"] == REDACTED


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Authorization: Bearer abc.DEF-123_x", f"Authorization: {REDACTED}"),
        ("header was Bearer abc.DEF-123_x", f"header was Bearer {REDACTED}"),
        ("basic dXNlcjpwYXNz sent", f"basic {REDACTED} sent"),
        ("GET /cb?token=abcd1234&page=2", f"GET /cb?token={REDACTED}&page=2"),
        (
            "{'password': 'hunter2', 'email': 'a@b.c'}",
            f"{{'password': '{REDACTED}', 'email': 'a@b.c'}}",
        ),
        ('{"client_secret": "s3cr3t"}', f'{{"client_secret": "{REDACTED}"}}'),
        ("PRIVATE_KEY=abc123 loaded", f"PRIVATE_KEY={REDACTED} loaded"),
        ("User(email='a@b.c', password='pw1')", f"User(email='a@b.c', password='{REDACTED}')"),
        (
            "issued eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl now",
            f"issued {REDACTED} now",
        ),
        ("item 42 costs 3.50, see /api/v1/items/42", "item 42 costs 3.50, see /api/v1/items/42"),
    ],
)
def test_secrets_inside_text_are_redacted(text: str, expected: str) -> None:
    assert redact_text(text) == expected


def test_secret_keys_are_redacted_at_any_depth_and_other_fields_are_kept() -> None:
    event = {
        "event": "user_saved",
        "status": 201,
        "path": "/api/v1/users/3",
        "user": {"email": "a@b.c", "password": "x", "profile": {"api_key": "k"}},
        "pairs": [("authorization", "Basic dXNlcjpwYXNz"), ("accept", "*/*")],
        "Set-Cookie": "session=abc",
        "hashed_password": "$argon2id$v=19$...",
        "refresh_token": 12345,
    }
    out = redact_secrets(None, "info", dict(event))
    assert out["event"] == "user_saved"
    assert out["status"] == 201
    assert out["path"] == "/api/v1/users/3"
    assert out["user"] == {"email": "a@b.c", "password": REDACTED, "profile": {"api_key": REDACTED}}
    assert out["pairs"] == [["authorization", f"Basic {REDACTED}"], ["accept", "*/*"]]
    assert out["Set-Cookie"] == out["hashed_password"] == out["refresh_token"] == REDACTED


def test_stdlib_and_uvicorn_loggers_are_rendered_by_the_same_pipeline(capture: Capture) -> None:
    logging.getLogger("sqlalchemy.engine.Engine").warning("slow query took %d ms", 812)
    logging.getLogger("uvicorn.error").info("Started server process [%d]", 1234)
    lines = capture.lines()
    assert [(line["logger"], line["event"]) for line in lines] == [
        ("sqlalchemy.engine.Engine", "slow query took 812 ms"),
        ("uvicorn.error", "Started server process [1234]"),
    ]
    assert all(set(line) >= REQUIRED_KEYS and line["request_id"] is None for line in lines)


def test_uvicorns_own_handlers_are_replaced_so_its_lines_are_not_doubled() -> None:
    # What uvicorn's dictConfig leaves behind: its own handler and no propagation.
    plain = io.StringIO()
    uvicorn_logger = logging.getLogger("uvicorn")
    uvicorn_logger.addHandler(logging.StreamHandler(plain))
    uvicorn_logger.propagate = False
    cap = Capture()
    configure_logging(json=True, stream=cap.stream)

    logging.getLogger("uvicorn.error").info("Application startup complete.")
    # The middleware writes the access line; uvicorn's own would be a second one per request.
    logging.getLogger("uvicorn.access").info('127.0.0.1:5000 - "GET / HTTP/1.1" 200')
    assert plain.getvalue() == ""
    assert [line["event"] for line in cap.lines()] == ["Application startup complete."]


def test_level_setting_filters_structlog_and_stdlib_lines() -> None:
    cap = Capture()
    configure_logging(json=True, stream=cap.stream, level="WARNING")
    get_logger("x").info("dropped")
    logging.getLogger("y").info("dropped too")
    get_logger("x").warning("kept")
    assert [line["event"] for line in cap.lines()] == ["kept"]


def test_configuring_twice_neither_duplicates_nor_keeps_the_old_stream() -> None:
    first, second = Capture(), Capture()
    configure_logging(json=True, stream=first.stream)
    configure_logging(json=True, stream=first.stream)
    get_logger("x").info("once")
    configure_logging(json=True, stream=second.stream)
    get_logger("x").info("moved")
    assert [line["event"] for line in first.lines()] == ["once"]
    assert [line["event"] for line in second.lines()] == ["moved"]


def test_console_mode_is_readable_text_and_still_redacts() -> None:
    stream = io.StringIO()
    configure_logging(json=False, stream=stream)
    log = get_logger("console")
    log.info("user_login", email="a@b.c", password="pw-console-1")
    try:
        raise ValueError("bad password=pw-console-2")
    except ValueError:
        log.exception("login_failed")
    text = stream.getvalue()
    assert "user_login" in text
    assert "email=a@b.c" in text
    assert "ValueError" in text
    assert "pw-console-1" not in text
    assert "pw-console-2" not in text
    with pytest.raises(json.JSONDecodeError):
        json.loads(text.splitlines()[0])


def test_log_file_rotates_and_always_holds_json(tmp_path: Path) -> None:
    log_file = tmp_path / "app.log"
    console = io.StringIO()
    configure_logging(
        json=False,
        stream=console,
        log_file=str(log_file),
        file_max_bytes=2_000,
        file_backup_count=2,
    )
    log = get_logger("rotating")
    for n in range(100):
        log.info("line", n=n, token="t-secret")
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == ["app.log", "app.log.1", "app.log.2"]
    for path in tmp_path.iterdir():
        for raw in path.read_text().splitlines():
            line = json.loads(raw)
            assert set(line) >= REQUIRED_KEYS
            assert line["token"] == REDACTED
    assert json.loads(log_file.read_text().splitlines()[-1])["n"] == 99
    assert "line" in console.getvalue()


async def test_unhandled_exception_is_logged_once_when_uvicorn_serves_the_app(
    kit_app: FastAPI, capture: Capture
) -> None:
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    # Listening before the server starts: the client's connection waits in the backlog, so no
    # readiness polling is needed.
    listener.listen(16)
    port = listener.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(kit_app, log_config=None, lifespan="off", access_log=True)
    )
    serving = asyncio.create_task(server.serve(sockets=[listener]))
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            r = await client.get("/api/v1/test/boom/9")
    finally:
        server.should_exit = True
        await serving
        listener.close()

    assert r.status_code == 500
    tracebacks = [line for line in capture.lines() if "exception" in line]
    assert [t["event"] for t in tracebacks] == ["unhandled_exception"]
    assert tracebacks[0]["request_id"] == r.json()["error"]["request_id"]
    assert "Exception in ASGI application" not in capture.text
    # One access line for the request: the middleware's, not uvicorn's as well.
    assert not [line for line in capture.lines() if line["logger"] == "uvicorn.access"]
    assert len(capture.events("http_request")) == 1


def test_uvicorn_still_logs_an_exception_the_middleware_never_saw(capture: Capture) -> None:
    try:
        raise RuntimeError("raised outside any instrumented app")
    except RuntimeError:
        logging.getLogger("uvicorn.error").exception("Exception in ASGI application")
    (line,) = capture.events("Exception in ASGI application")
    assert "RuntimeError: raised outside" in line["exception"]


@pytest.mark.parametrize(
    ("env", "log_json", "expected"),
    [("prod", None, True), ("dev", None, False), ("test", None, False), ("dev", True, True)],
)
def test_json_is_the_production_default_and_the_setting_overrides_it(
    env: str, log_json: bool | None, expected: bool
) -> None:
    settings = Settings(env=env, log_json=log_json, secret_key=secrets.token_urlsafe(48))
    assert wants_json(settings) is expected


def test_structlog_contextvars_are_merged_into_lines(capture: Capture) -> None:
    with structlog.contextvars.bound_contextvars(task_id="t-1"):
        get_logger("x").info("inside")
    get_logger("x").info("outside")
    inside, outside = capture.lines()
    assert inside["task_id"] == "t-1"
    assert "task_id" not in outside


A_JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiI0MiJ9.c2lnbmF0dXJl"


def _without_timestamp(line: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in line.items() if k != "timestamp"}


def test_a_line_logger_writes_what_get_logger_writes(capture: Capture) -> None:
    """The access line's fast path: same document, same context, same redaction."""
    fields = {"method": "GET", "path": f"/reset/{A_JWT}", "status": 200, "duration_ms": 0.5}
    set_request_id("req-7")
    try:
        with structlog.contextvars.bound_contextvars(task_id="t-1"):
            get_logger("svc.access").info("http_request", **fields)
            LineLogger("svc.access").log(logging.INFO, "http_request", dict(fields))
            LineLogger("svc.access").log(logging.ERROR, "http_request", dict(fields))
    finally:
        set_request_id(None)
    slow, fast, error = capture.events("http_request")
    assert _without_timestamp(fast) == _without_timestamp(slow)
    assert fast["request_id"] == "req-7"
    assert fast["task_id"] == "t-1"
    assert fast["path"] == f"/reset/{REDACTED}"
    assert fast["logger"] == "svc.access"
    assert error["level"] == "error"
    assert list(fast) == list(slow)  # the same key order, so lines read alike


def test_a_line_logger_obeys_levels_and_reaches_every_handler(
    caplog: pytest.LogCaptureFixture,
) -> None:
    console = io.StringIO()
    configure_logging(json=False, stream=console, level="WARNING")
    line = LineLogger("svc.access")
    line.log(logging.INFO, "dropped", {"n": 1})
    assert not line.enabled_for(logging.INFO)
    assert console.getvalue() == ""
    with caplog.at_level(logging.INFO, logger="svc.access"):
        line.log(logging.INFO, "kept", {"n": 2, "password": "hunter2"})
    (record,) = [r for r in caplog.records if r.name == "svc.access"]
    assert record.levelno == logging.INFO
    assert "kept" in console.getvalue()
    assert "n=2" in console.getvalue()
    assert "hunter2" not in console.getvalue()
    # The console handler redacted its own copy: the next handler sees the record as it came.
    event = record.msg
    assert isinstance(event, dict)
    assert event["password"] == "hunter2"


@contextmanager
def _records_at_root() -> Iterator[list[logging.LogRecord]]:
    """The records the root logger's handlers receive, as another handler sees them."""
    seen: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record)

    keep = Keep()
    logging.getLogger().addHandler(keep)
    try:
        yield seen
    finally:
        logging.getLogger().removeHandler(keep)


def test_a_line_logger_record_comes_from_the_record_factory(capture: Capture) -> None:
    """Tracing integrations add their ids to every record through the factory."""
    plain = logging.getLogRecordFactory()

    def traced(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = plain(*args, **kwargs)
        record.trace_id = "t-9"
        return record

    logging.setLogRecordFactory(traced)
    try:
        with _records_at_root() as kept:
            LineLogger("svc.access").log(logging.INFO, "http_request", {"status": 200})
    finally:
        logging.setLogRecordFactory(plain)
    (record,) = [r for r in kept if r.name == "svc.access"]
    assert getattr(record, "trace_id", None) == "t-9"
    assert capture.events("http_request")[0]["status"] == 200


def test_the_console_and_json_formatters_leave_the_record_to_other_handlers() -> None:
    stream = io.StringIO()
    configure_logging(json=True, stream=stream)
    with _records_at_root() as seen:
        get_logger("svc").info("one", password="hunter2")
    (record,) = [r for r in seen if r.name == "svc"]
    assert json.loads(stream.getvalue())["password"] == REDACTED
    # The formatter redacted its own copy of the event, not the record's.
    event = record.msg
    assert isinstance(event, dict)
    assert event["password"] == "hunter2"
    assert "_record" not in event


def test_a_stdlib_record_with_structlogs_attribute_names_is_still_rendered(
    capture: Capture,
) -> None:
    logging.getLogger("svc.stdlib").warning("plain %s", "text", extra={"_name": "warning"})
    (line,) = capture.events("plain text")
    assert line["level"] == "warning"


def test_json_lines_are_ascii_and_survive_values_json_lacks() -> None:
    class Opaque:
        def __repr__(self) -> str:
            return "Opaque()"

    text = render_json(None, "info", {"s": "café \u2028", "o": Opaque(), "n": None})
    assert text.isascii()
    assert json.loads(text) == {"s": "café \u2028", "o": "Opaque()", "n": None}
    # Bytes are not JSON (the redaction turns them into text first): the fallback still writes.
    assert json.loads(render_json(None, "info", {"b": b"\xff"})) == {"b": "b'\\xff'"}


def test_the_timestamp_is_iso_utc_with_microseconds(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = iter(
        [
            1_764_851_671_000_000_000,  # a whole second: microseconds still written
            1_764_851_671_323_847_999,  # the same second, from the cache; truncated as datetime
            1_764_851_671_999_999_999,
            1_764_851_672_000_001_000,  # the next second
            1_764_851_671_500_000_000,  # and back (a clock step)
        ]
    )
    seen: list[int] = []

    def now() -> int:
        seen.append(next(clock))
        return seen[-1]

    monkeypatch.setattr(time, "time_ns", now)
    stamps = [add_timestamp(None, "info", {})["timestamp"] for _ in range(5)]
    expected = [
        datetime.fromtimestamp(n // 1000 / 1e6, UTC).isoformat(timespec="microseconds")
        for n in seen
    ]
    assert stamps == [e.replace("+00:00", "Z") for e in expected]


def test_a_request_id_is_32_random_hex_digits() -> None:
    ids = {new_request_id() for _ in range(100)}
    assert len(ids) == 100
    assert all(re.fullmatch(r"[0-9a-f]{32}", i) for i in ids)
