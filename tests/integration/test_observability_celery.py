"""Celery tasks log like requests and carry the request id of the request that queued them."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from celery import Celery
from celery.contrib.testing.worker import start_worker
from prometheus_client import CollectorRegistry, Counter

from patterns.observability.celery import connect_celery_observability
from patterns.observability.logging import configure_logging, get_logger, reset_logging
from patterns.observability.request_id import get_request_id, set_request_id


@pytest.fixture
def log_stream() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    configure_logging(json=True, stream=stream)
    yield stream
    reset_logging()


def _lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_task_lines_carry_the_queuing_requests_id_and_the_task_identity(
    redis_url: str, log_stream: io.StringIO
) -> None:
    app = Celery("observability-test", broker=redis_url, backend=redis_url, set_as_current=False)
    log = get_logger("tests.tasks")

    @app.task(name="tests.observability.echo")
    def echo(n: int) -> str | None:
        log.info("task_ran", n=n)
        logging.getLogger("tests.tasks.stdlib").info("stdlib line in task %d", n)
        return get_request_id()

    @app.task(name="tests.observability.fail")
    def fail() -> None:
        raise ValueError("task failed on purpose")

    registry = CollectorRegistry()
    outcomes = Counter("task_outcomes", "t", ["task", "outcome"], registry=registry)
    took_over_logging: list[bool] = []
    disconnect = connect_celery_observability(
        app, task_outcomes=outcomes, configure_logging=lambda: took_over_logging.append(True)
    )
    try:
        with start_worker(app, perform_ping_check=False, shutdown_timeout=30):
            # Published from "inside a request": the id is in this thread's context only; the
            # worker thread starts with an empty context, so the header is its only way in.
            set_request_id("req-from-api")
            try:
                queued_in_request = echo.delay(1)
            finally:
                set_request_id(None)
            queued_outside = echo.delay(2)
            failing = fail.delay()

            assert queued_in_request.get(timeout=20) == "req-from-api"
            assert queued_outside.get(timeout=20) is None
            with pytest.raises(ValueError, match="on purpose"):
                failing.get(timeout=20, propagate=True)
    finally:
        disconnect()

    lines = _lines(log_stream)
    ran = {line["n"]: line for line in lines if line["event"] == "task_ran"}
    assert ran[1]["request_id"] == "req-from-api"
    assert ran[1]["task_id"] == queued_in_request.id
    assert ran[1]["task_name"] == "tests.observability.echo"
    # The first task's id does not leak into the next task run by the same worker.
    assert ran[2]["request_id"] is None
    assert ran[2]["task_id"] == queued_outside.id
    stdlib = [line for line in lines if line["event"] == "stdlib line in task 1"]
    assert stdlib[0]["request_id"] == "req-from-api"
    assert stdlib[0]["task_id"] == queued_in_request.id

    assert took_over_logging  # Celery called our set-up instead of configuring the root logger
    count = registry.get_sample_value
    assert count("task_outcomes_total", {"task": echo.name, "outcome": "success"}) == 2
    assert count("task_outcomes_total", {"task": fail.name, "outcome": "failure"}) == 1
