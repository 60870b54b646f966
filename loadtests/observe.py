"""`--prometheus`: what the service itself saw during a load run (guide: "Prometheus Metrics").

A real Prometheus (the `prometheus` binary: Debian's package, or any release on the PATH) scrapes
the API (its `/metrics` merges every uvicorn worker, prometheus-client's multiprocess mode) and
the Celery worker (whose processes write to a multiprocess directory of their own, served by
`python -m loadtests.observe worker-metrics`) every second, with the recording rules of
`loadtests/stack/prometheus/rules.yml`: request rate, error ratio and p95 by route template.
After the run, every panel of the Grafana dashboard (`loadtests/stack/grafana/dashboards/kit.json`)
is drawn from Prometheus's query API into a PNG in the results folder, so the charts and the
dashboard show the same queries. The TSDB stays in the results folder: `python -m
loadtests.observe replay RESULTS_DIR` serves a finished run's metrics again.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from loadtests.processes import stop_group

STACK = Path(__file__).resolve().parent / "stack"
RULES = STACK / "prometheus" / "rules.yml"
DASHBOARD = STACK / "grafana" / "dashboards" / "kit.json"
INSTALL_HINT = (
    "--prometheus needs the prometheus binary: on Debian or Ubuntu `apt-get install -y "
    "prometheus`; elsewhere a release from prometheus.io on the PATH"
)


class _Starter(Protocol):
    def start(
        self, name: str, argv: Sequence[str], env: dict[str, str], log: Path
    ) -> subprocess.Popen[bytes]: ...


def prometheus_binary() -> str:
    found = shutil.which("prometheus")
    if found is None:
        raise RuntimeError(INSTALL_HINT)
    return found


def free_port() -> int:
    from patterns.testing.backends import free_port as pick

    return pick()


def run_config(
    targets: Mapping[str, Sequence[str]], *, scheme: str = "http", interval: str = "1s"
) -> dict[str, Any]:
    """The Prometheus configuration of a run: a job per part of the stack, the kit's rules.
    JSON is YAML, so Prometheus reads it as it is."""
    return {
        "global": {"scrape_interval": interval, "evaluation_interval": interval},
        "rule_files": [str(RULES)],
        "scrape_configs": [
            {
                "job_name": job,
                "scheme": scheme if job == "api" else "http",
                "static_configs": [{"targets": list(addresses)}],
            }
            for job, addresses in targets.items()
        ],
    }


def dashboard_panels(path: Path = DASHBOARD) -> list[tuple[str, list[tuple[str, str]], str]]:
    """(title, [(query, legend format)], unit) of every panel of the dashboard with queries."""
    data = json.loads(path.read_text(encoding="utf-8"))
    panels = []
    for panel in data["panels"]:
        queries = [
            (t["expr"], t.get("legendFormat", ""))
            for t in panel.get("targets", [])
            if t.get("expr")
        ]
        if queries:
            unit = panel.get("fieldConfig", {}).get("defaults", {}).get("unit", "")
            panels.append((panel["title"], queries, unit))
    return panels


@dataclass
class Api:
    """Prometheus's HTTP query API."""

    url: str

    def _get(self, path: str, **params: str) -> Any:
        query = urllib.parse.urlencode(params)
        with urllib.request.urlopen(f"{self.url}{path}?{query}", timeout=30) as response:  # noqa: S310
            body = json.load(response)
        if body.get("status") != "success":
            raise RuntimeError(f"Prometheus: {body.get('error', body)}")
        return body["data"]

    def ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/-/ready", timeout=2) as response:  # noqa: S310
                return bool(response.status == 200)
        except OSError:
            return False

    def query(self, expr: str, at: float) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self._get("/api/v1/query", query=expr, time=f"{at:.3f}")[
            "result"
        ]
        return result

    def query_range(self, expr: str, start: float, end: float, step: float) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self._get(
            "/api/v1/query_range",
            query=expr,
            start=f"{start:.3f}",
            end=f"{end:.3f}",
            step=f"{step:g}",
        )["result"]
        return result

    def wait_ready(self, timeout: float, alive: Any = None) -> None:
        deadline = time.monotonic() + timeout
        while not self.ready():
            if alive is not None and alive.poll() is not None:
                raise RuntimeError(f"prometheus exited with code {alive.returncode}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"Prometheus at {self.url} not ready after {timeout:.0f} s")
            time.sleep(0.2)  # polling interval of the readiness loop

    def wait_for_samples(self, expr: str, timeout: float) -> None:
        """Until `expr` has a value: the first scrapes (and the rules on them) are in."""
        deadline = time.monotonic() + timeout
        while not self.query(expr, time.time()):
            if time.monotonic() > deadline:
                raise TimeoutError(f"Prometheus: no samples of {expr} after {timeout:.0f} s")
            time.sleep(0.2)  # polling interval


def evaluate_panels(api: Api, at: float, path: Path = DASHBOARD) -> dict[str, int]:
    """Every dashboard query evaluated at `at`: query → number of series it returned."""
    return {
        query: len(api.query(query, at))
        for _, queries, _ in dashboard_panels(path)
        for query, _ in queries
    }


def _label(metric: Mapping[str, str], legend: str) -> str:
    """Grafana's legend format (`{{endpoint}}`) filled from the series' labels."""
    if legend:
        return re.sub(r"\{\{\s*(\w+)\s*\}\}", lambda m: metric.get(m[1], ""), legend)
    shown = {k: v for k, v in metric.items() if k not in ("__name__", "instance")}
    return ", ".join(f"{v}" for v in shown.values()) or "all"


_AXIS = {"s": "ms", "reqps": "requests/s", "percentunit": "ratio"}


def _slug(title: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")


def draw_panels(api: Api, start: float, end: float, directory: Path) -> list[Path]:
    """One PNG per dashboard panel, its queries over the run's window (matplotlib)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    step = max(1.0, (end - start) / 300)
    written = []
    for title, queries, unit in dashboard_panels():
        fig, ax = plt.subplots(figsize=(7.5, 3.2), dpi=90)
        drawn = 0
        for query, legend in queries:
            for series in api.query_range(query, start, end, step):
                points = [(float(t) - start, float(v)) for t, v in series["values"]]
                points = [(t, v) for t, v in points if v == v]  # NaN: no data in the window
                if not points:
                    continue
                scale = 1000.0 if unit == "s" else 1.0
                times, values = [t for t, _ in points], [v * scale for _, v in points]
                ax.plot(times, values, label=_label(series["metric"], legend), linewidth=1.2)
                drawn += 1
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("seconds into the run", fontsize=8)
        ax.set_ylabel(_AXIS.get(unit, ""), fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
        if not drawn:
            # Say so rather than draw an empty frame (orders' tasks, for one, wait out
            # KIT_ORDER_PROCESSING_DELAY_S: `--order-delay 0` runs them within the load).
            ax.text(0.5, 0.5, "no samples in the run's window", ha="center", va="center",
                    transform=ax.transAxes, fontsize=9, color="grey")  # fmt: skip
        if 0 < drawn <= 12:
            ax.legend(fontsize=6, loc="upper left", bbox_to_anchor=(1.01, 1.0))
        fig.tight_layout()
        path = directory / f"{_slug(title)}.png"
        fig.savefig(path)
        plt.close(fig)
        written.append(path)
    return written


class Prometheus:
    """A Prometheus for one run: its config, TSDB and charts in `directory`."""

    def __init__(
        self, directory: Path, targets: Mapping[str, Sequence[str]], host: str = "http://x"
    ) -> None:
        self.directory = directory
        self.targets = dict(targets)
        self.scheme = "https" if host.startswith("https") else "http"
        self.port = free_port()
        self.api = Api(f"http://127.0.0.1:{self.port}")
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def config(self) -> Path:
        return self.directory / "prometheus.yml"

    def command(self) -> list[str]:
        return [
            prometheus_binary(),
            f"--config.file={self.config}",
            f"--storage.tsdb.path={self.directory / 'data'}",
            f"--web.listen-address=127.0.0.1:{self.port}",
        ]

    def start(self, processes: _Starter) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self.config.write_text(
            json.dumps(run_config(self.targets, scheme=self.scheme), indent=1), encoding="utf-8"
        )
        self._proc = processes.start(
            "prometheus", self.command(), dict(os.environ), self.directory / "prometheus.log"
        )
        self.api.wait_ready(60, self._proc)
        # The load starts once every job has been scraped and the rules have run on it.
        for job in self.targets:
            self.api.wait_for_samples(f'up{{job="{job}"}} == 1', 60)

    def after_run(self, started: float, ended: float) -> list[Path]:
        """Let the last scrapes and rule evaluations in, keep the run's window, draw."""
        if self._proc is None:
            return []
        deadline = time.monotonic() + 10
        # Two evaluation intervals after the end, so the rules have seen the last scrape.
        while time.time() < ended + 2 and time.monotonic() < deadline:
            time.sleep(0.2)
        (self.directory / "window.json").write_text(
            json.dumps({"start": started, "end": ended}), encoding="utf-8"
        )
        return draw_panels(self.api, started, ended, self.directory)


@contextlib.contextmanager
def replay(results: Path) -> Iterator[tuple[Api, float, float]]:
    """A finished run's Prometheus again, on its TSDB, scraping nothing: yields its API and the
    run's window (Unix seconds)."""
    directory = results / "prometheus"
    window = json.loads((directory / "window.json").read_text(encoding="utf-8"))
    config = directory / "replay.yml"
    config.write_text(json.dumps({"rule_files": [], "scrape_configs": []}), encoding="utf-8")
    port = free_port()
    log = (directory / "replay.log").open("ab")
    proc = subprocess.Popen(  # noqa: S603
        [
            prometheus_binary(),
            f"--config.file={config}",
            f"--storage.tsdb.path={directory / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        api = Api(f"http://127.0.0.1:{port}")
        api.wait_ready(60, proc)
        yield api, float(window["start"]), float(window["end"])
    finally:
        stop_group(proc, 30)
        log.close()


def worker_exporter_command(directory: Path, port: int, bind: str = "127.0.0.1") -> list[str]:
    return [
        sys.executable, "-m", "loadtests.observe", "worker-metrics",
        "--dir", str(directory), "--port", str(port), "--bind", bind,
    ]  # fmt: skip


def serve_worker_metrics(directory: Path, port: int, bind: str) -> None:
    """Serve the metrics the Celery worker's processes write to `directory` (prometheus-client's
    multiprocess mode has no server of its own: an exposition process reads the files)."""
    from prometheus_client import CollectorRegistry, multiprocess, start_http_server

    directory.mkdir(parents=True, exist_ok=True)
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=str(directory))  # type: ignore[no-untyped-call]
    start_http_server(port, addr=bind, registry=registry)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    stop.wait()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m loadtests.observe")
    sub = parser.add_subparsers(dest="command", required=True)
    exporter = sub.add_parser("worker-metrics", help="serve a Celery worker's multiprocess metrics")
    exporter.add_argument("--dir", type=Path, default=os.environ.get("PROMETHEUS_MULTIPROC_DIR"))
    exporter.add_argument("--port", type=int, default=9808)
    exporter.add_argument("--bind", default="127.0.0.1")
    again = sub.add_parser("replay", help="serve a finished run's Prometheus until Ctrl-C")
    again.add_argument("results", type=Path)
    args = parser.parse_args(argv)
    if args.command == "worker-metrics":
        if args.dir is None:
            parser.error("--dir (or PROMETHEUS_MULTIPROC_DIR) is required")
        serve_worker_metrics(args.dir, args.port, args.bind)
        return 0
    with replay(args.results) as (api, start, end):
        print(f"{api.url}: the run's window is {start:.0f}..{end:.0f} (Unix seconds); Ctrl-C ends")
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
