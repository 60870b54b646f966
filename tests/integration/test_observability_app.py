"""The real app on PostgreSQL and Redis: no secrets in its logs, and metrics that count the flow."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from httpx import AsyncClient
from prometheus_client.parser import text_string_to_metric_families

from patterns.observability.logging import configure_logging, reset_logging

REGISTER = "/api/v1/auth/register"
LOGIN = "/api/v1/auth/login"
REQUIRED_KEYS = {"timestamp", "level", "event", "request_id"}


@pytest.fixture
def log_stream(app: FastAPI) -> Iterator[io.StringIO]:
    """Every logger at DEBUG, as JSON, into a buffer (after the app set logging up itself)."""
    stream = io.StringIO()
    configure_logging(json=True, stream=stream, level="DEBUG")
    yield stream
    reset_logging()


def _lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def _count(text: str, sample_name: str, **wanted: str) -> float:
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == sample_name and wanted.items() <= sample.labels.items()
    )


@pytest.fixture
def sql_echo() -> Iterator[None]:
    """SQLAlchemy's statement and parameter log on, as `KIT_DB_ECHO` would turn it on. Asked for
    first: a connection decides whether it logs when it opens."""
    engine_logger = logging.getLogger("sqlalchemy.engine")
    level = engine_logger.level
    engine_logger.setLevel(logging.INFO)
    yield
    engine_logger.setLevel(level)


async def test_registration_and_login_leave_no_password_or_token_in_any_log_line(
    sql_echo: None, client: AsyncClient, log_stream: io.StringIO
) -> None:
    password = "Observable-Secret-77"
    r = await client.post(REGISTER, json={"email": "logs@example.com", "password": password})
    assert r.status_code == 201, r.text
    r = await client.post(LOGIN, data={"username": "logs@example.com", "password": password})
    assert r.status_code == 200, r.text
    tokens = r.json()
    r = await client.get(
        "/api/v1/users/me", headers={"Authorization": f"Bearer {tokens['access_token']}"}
    )
    assert r.status_code == 200

    text = log_stream.getvalue()
    lines = _lines(log_stream)  # every line is JSON
    assert any(line["logger"].startswith("sqlalchemy.engine") for line in lines)
    assert all(set(line) >= REQUIRED_KEYS for line in lines)
    for secret in (password, tokens["access_token"], tokens["refresh_token"]):
        assert secret not in text
    access = [line for line in lines if line["event"] == "http_request"]
    assert [(a["route"], a["status"]) for a in access] == [
        (REGISTER, 201),
        (LOGIN, 200),
        ("/api/v1/users/me", 200),
    ]


async def test_a_refused_login_is_logged_under_the_request_id_its_error_carries(
    client: AsyncClient, log_stream: io.StringIO
) -> None:
    r = await client.post(LOGIN, data={"username": "nobody@example.com", "password": "wrong-pw1"})
    assert r.status_code == 401
    request_id = r.json()["error"]["request_id"]
    (access,) = [line for line in _lines(log_stream) if line["event"] == "http_request"]
    assert access["request_id"] == request_id
    assert (access["route"], access["status"]) == (LOGIN, 401)
    assert "wrong-pw1" not in log_stream.getvalue()


async def test_metrics_count_the_registration_by_route_template_and_the_business_counter(
    client: AsyncClient,
) -> None:
    before = (await client.get("/metrics")).text
    r = await client.post(REGISTER, json={"email": "count@example.com", "password": "pw-123456"})
    assert r.status_code == 201
    await client.get("/health/ready")
    after = (await client.get("/metrics")).text

    def delta(sample: str, **labels: str) -> float:
        return _count(after, sample, **labels) - _count(before, sample, **labels)

    assert delta("user_registrations_total") == 1
    assert (
        delta(
            "http_request_duration_seconds_count",
            method="POST",
            endpoint=REGISTER,
            status="201",
        )
        == 1
    )
    assert delta("http_request_duration_seconds_count", endpoint="/health/ready") == 0
