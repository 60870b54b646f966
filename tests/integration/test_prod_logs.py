"""In production (`KIT_ENV=prod`) every line the server and the worker write is one JSON object:
the start-up lines, uvicorn's, Celery's and kombu's own, so a log collector parses them all
(guide: "Structured Logging"; docs/reference/observability.md).

The real commands run as subprocesses on the harness's PostgreSQL and Redis; each is stopped
with SIGTERM once it answers, and everything it wrote to stdout and stderr is parsed.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from patterns.testing import wait_until
from patterns.testing.backends import free_port
from reference_app.core.celery_app import create_celery_app
from reference_app.core.config import Settings

pytestmark = pytest.mark.slow

WAIT_S = 60


def prod_env(database_url: str, redis_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KIT_")}
    return {
        **env,
        "KIT_ENV": "prod",
        "KIT_SECRET_KEY": secrets.token_urlsafe(48),
        "KIT_DATABASE_URL": database_url,
        "KIT_REDIS_URL": redis_url,
        "KIT_CACHE_WARM_ON_STARTUP": "false",
    }


def json_lines(*files: Path) -> list[dict[str, Any]]:
    """Every non-empty line of the files, parsed; a line that is not a JSON object fails."""
    documents = []
    for file in files:
        for line in file.read_text().splitlines():
            if not line.strip():
                continue
            try:
                document = json.loads(line)
            except json.JSONDecodeError:
                pytest.fail(f"{file.name}: not JSON: {line!r}")
            assert isinstance(document, dict), line
            documents.append(document)
    return documents


def run_until(
    command: list[str], env: dict[str, str], tmp_path: Path, ready: Callable[[], bool], what: str
) -> list[dict[str, Any]]:
    out, err = tmp_path / "stdout", tmp_path / "stderr"
    with out.open("wb") as stdout, err.open("wb") as stderr:
        proc = subprocess.Popen(command, env=env, stdout=stdout, stderr=stderr)
    try:
        wait_until(ready, what, timeout_s=WAIT_S, process=proc)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=WAIT_S)
    return json_lines(out, err)


def test_every_line_the_server_writes_in_production_is_json(
    tmp_path: Path, database_url: str, redis_url: str
) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"

    def answers() -> bool:
        try:
            return httpx.get(f"{base}/api/v1/items?limit=1", timeout=2).status_code == 200
        except httpx.TransportError:
            return False

    command = [sys.executable, "-m", "reference_app", "serve", "--port", str(port)]
    lines = run_until(command, prod_env(database_url, redis_url), tmp_path, answers, "the API")

    events = [line["event"] for line in lines]
    assert "Core Concepts Kit on configured database and Redis" in events
    assert f"OpenAPI page: {base}/docs" in events
    assert "Application startup complete." in events  # uvicorn's own
    assert any(e == "http_request" for e in events)
    assert all({"timestamp", "level", "logger"} <= line.keys() for line in lines)


def test_every_line_the_worker_writes_in_production_is_json(
    tmp_path: Path, database_url: str, redis_url: str
) -> None:
    app = create_celery_app(Settings(env="test", database_url=database_url, redis_url=redis_url))

    def answers() -> bool:
        try:
            return bool(app.control.inspect(timeout=0.5).ping())
        except Exception:  # the broker connection is still being made
            return False

    command = [sys.executable, "-m", "reference_app", "worker", "--pool=solo", "--concurrency=1"]
    try:
        env = prod_env(database_url, redis_url)
        lines = run_until(command, env, tmp_path, answers, "the worker")
    finally:
        app.close()

    loggers = {line["logger"] for line in lines}
    assert any(name.startswith("celery") for name in loggers), loggers
    assert any("ready" in str(line["event"]) for line in lines), lines
