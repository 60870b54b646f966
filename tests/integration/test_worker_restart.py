"""The worker outlives a Redis outage: `python -m reference_app worker` starts it again after
kombu's Redis transport kills it (docs: "Background work", worker exits when Redis goes away).

A Redis server of the test's own (the harness's is shared by other tests) is shut down while the
worker holds a countdown message, and started again on the same port. Celery 5.7 / kombu 5.7
then exit the worker with "Unrecoverable error: AttributeError(... 'hostname')"; the supervisor
must start a new one. Waits are bounded polls on the broker and the worker, never on the clock.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import redis

from patterns.testing import wait_until
from patterns.testing.backends import free_port
from reference_app.core.celery_app import KitCelery, create_celery_app
from reference_app.core.config import Settings
from reference_app.worker.tasks import PROCESS_ORDER

pytestmark = pytest.mark.slow

WAIT_S = 60


def wait_for(condition: Callable[[], object], what: str) -> None:
    wait_until(condition, what, timeout_s=WAIT_S)


def start_redis(server: str, port: int, workdir: Path) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--dir", str(workdir)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    client = redis.Redis(port=port)

    wait_until(
        client.ping, "redis-server to start", timeout_s=WAIT_S, ignore=(redis.ConnectionError,)
    )
    client.close()
    return proc


def worker_pid(app: KitCelery) -> int | None:
    """The pid of the one worker answering on `app`'s broker, or None."""
    try:
        stats = app.control.inspect(timeout=0.5).stats() or {}
    except Exception:  # the broker is still coming back
        return None
    pids = [int(s["pid"]) for s in stats.values()]
    return pids[0] if len(pids) == 1 else None


def test_the_worker_is_started_again_after_redis_drops_it_holding_a_countdown_message(
    tmp_path: Path, database_url: str
) -> None:
    server = shutil.which("redis-server")
    if server is None:
        pytest.skip("needs a redis-server binary: this test stops and restarts its own Redis")
    port = free_port()
    url = f"redis://127.0.0.1:{port}/0"
    broker = start_redis(server, port, tmp_path)
    log = tmp_path / "worker.log"
    env = {**os.environ, "KIT_REDIS_URL": url, "KIT_DATABASE_URL": database_url}
    command = [sys.executable, "-m", "reference_app", "worker", "--pool=solo", "--concurrency=1"]
    app = create_celery_app(Settings(env="test", database_url=database_url, redis_url=url))
    with log.open("wb") as out:
        supervisor = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
    client = redis.Redis(port=port)
    try:
        wait_for(lambda: worker_pid(app) is not None, "a worker")
        first = worker_pid(app)

        app.send_task(PROCESS_ORDER, args=(2**31 - 1,), countdown=300, ignore_result=True)
        wait_for(lambda: client.hlen("unacked") == 1, "the worker to hold the countdown message")
        with contextlib.suppress(redis.ConnectionError):  # the server hangs up as it stops
            client.shutdown(nosave=True)
        broker.wait(timeout=WAIT_S)
        broker = start_redis(server, port, tmp_path)

        # A task sent after the outage and taken to the end (no longer queued nor held) means a
        # worker consumes again, whichever it is; kombu's crash, when it happens, comes as the
        # connection is lost, so by then it has happened or it will not.
        app.send_task(PROCESS_ORDER, args=(2**31 - 1,), ignore_result=True)
        wait_for(
            lambda: client.llen("celery") == 0 and client.hlen("unacked") == 0,
            "a worker to take and finish a task after the outage",
        )
        output = log.read_text()
        if "Unrecoverable error" in output:  # kombu 5.7, nearly always: see the docs
            assert "worker exited with status 1; starting it again" in output, output[-3000:]
            wait_for(lambda: worker_pid(app) not in (None, first), "the new worker to answer")
        assert supervisor.poll() is None, output[-3000:]
    finally:
        supervisor.send_signal(signal.SIGTERM)
        supervisor.wait(timeout=WAIT_S)
        client.close()
        app.close()
        broker.terminate()
        broker.wait(timeout=WAIT_S)
    assert supervisor.returncode == 0, log.read_text()[-3000:]  # a warm shutdown, not a crash
