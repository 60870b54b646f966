"""With two uvicorn workers, `/metrics` aggregates both (prometheus-client's multiprocess mode)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families

from patterns.testing import wait_until
from patterns.testing.backends import free_port

pytestmark = pytest.mark.slow

ROUTE = "/docs"  # a route every build of the app has, cheap to serve, measured
BATCH = 40
MAX_REQUESTS = 2_000
START_TIMEOUT_S = 60.0


def _count_for_route(samples: object) -> float:
    total = 0.0
    for family in samples:  # type: ignore[attr-defined]
        for sample in family.samples:
            if (
                sample.name == "http_request_duration_seconds_count"
                and sample.labels.get("endpoint") == ROUTE
            ):
                total += sample.value
    return total


def _requests_per_pid(multiproc_dir: Path) -> dict[int, float]:
    """Each worker writes its own histogram file (`histogram_<pid>.db`); read them one by one."""
    per_pid: dict[int, float] = {}
    for path in multiproc_dir.glob("histogram_*.db"):
        pid = int(path.stem.split("_")[1])
        merged = MultiProcessCollector.merge([str(path)])  # type: ignore[no-untyped-call]
        per_pid[pid] = _count_for_route(merged)
    return {pid: n for pid, n in per_pid.items() if n}


def _wait_until_live(proc: subprocess.Popen[bytes], base: str, log: Path) -> None:
    def live() -> bool:
        if proc.poll() is not None:
            pytest.fail(f"server exited with {proc.returncode}:\n{log.read_text()}")
        return httpx.get(f"{base}/health/live", timeout=1.0).status_code == 200

    wait_until(
        live, "the server to be live", timeout_s=START_TIMEOUT_S, ignore=(httpx.TransportError,)
    )


def _get_on_a_new_connection(url: str) -> int:
    # A fresh connection per request lets the kernel hand each one to either worker.
    return httpx.get(url, headers={"Connection": "close"}, timeout=10.0).status_code


def test_metrics_aggregate_the_requests_served_by_two_workers(tmp_path: Path) -> None:
    multiproc_dir = tmp_path / "prometheus"
    multiproc_dir.mkdir()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("KIT_")}
    env.update(
        PROMETHEUS_MULTIPROC_DIR=str(multiproc_dir),
        KIT_ENV="dev",
        KIT_DATABASE_URL=f"sqlite:///{tmp_path / 'kit.db'}",
        KIT_LOG_LEVEL="WARNING",
    )
    log = tmp_path / "server.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "reference_app", "serve", "--workers", "2", "--port", str(port)],
            cwd=tmp_path,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait_until_live(proc, base, log)
        sent = 0
        with ThreadPoolExecutor(max_workers=8) as pool:
            # Until both workers have served some (the second may still be starting), bounded.
            while len(_requests_per_pid(multiproc_dir)) < 2 and sent < MAX_REQUESTS:
                statuses = list(pool.map(_get_on_a_new_connection, [f"{base}{ROUTE}"] * BATCH))
                assert statuses == [200] * BATCH
                sent += BATCH

        # A worker observes the duration after the last byte is sent, so the client can see a
        # response a moment before its count lands: read until every request is counted.
        wait_until(
            lambda: sum(_requests_per_pid(multiproc_dir).values()) >= sent,
            "every request to be counted",
        )
        per_pid = _requests_per_pid(multiproc_dir)
        assert len(per_pid) == 2, f"all {sent} requests went to one worker: {per_pid}"
        assert sum(per_pid.values()) == sent

        r = httpx.get(f"{base}/metrics")
        families = list(text_string_to_metric_families(r.text))
        assert _count_for_route(families) == sent
        in_progress = [
            s.value
            for f in families
            for s in f.samples
            if s.name == "http_requests_in_progress" and s.labels.get("method") == "GET"
        ]
        assert in_progress == [0.0]  # livesum: one series for all workers, nothing in flight
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    # Each worker marked itself dead on the way out: no live gauge is left to be summed.
    assert list(multiproc_dir.glob("gauge_livesum_*.db")) == []
