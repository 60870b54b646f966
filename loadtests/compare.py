"""Is this run worse than the last one? Two load runs side by side (guide: "Load Testing").

    python -m loadtests.compare BASELINE_DIR RUN_DIR [--threshold 1.25]
    nox -s load-compare -- BASELINE_DIR RUN_DIR        (or: nox -s load -- … --compare BASELINE)

Each results folder holds the SLO figures of its run (`summary.json`, written by the locustfile
at the end of the run). For every SLO group in both, throughput and p50/p95/p99 are printed side
by side with their ratio (run / baseline). The run is worse, and the exit code 1, when a
latency ratio passes the threshold or the throughput falls by as much. A group with fewer than
`--min-requests` requests in either run is shown, not judged (its percentiles are a handful of
samples), and so is a latency difference under `--min-delta-ms` (1 ms against 2 ms is a ratio of 2
and means nothing). Both runs' percentiles over time (Locust's `locust_stats_history.csv`) go into
one PNG, `compare.png` in the run's folder.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DEFAULT_THRESHOLD = 1.25
LATENCIES = ("p50_ms", "p95_ms", "p99_ms")


@dataclass(frozen=True)
class Row:
    group: str
    metric: str  # "req/s" or a latency key
    baseline: float
    run: float
    judged: bool
    worse: bool

    @property
    def ratio(self) -> float | None:
        return self.run / self.baseline if self.baseline else None


def load_summary(results: Path) -> dict[str, Any]:
    path = results / "summary.json"
    try:
        data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except OSError:
        raise SystemExit(f"compare: {path} not found (not a load run's results folder?)") from None
    return data


def compare(
    baseline: Mapping[str, Any],
    run: Mapping[str, Any],
    *,
    threshold: float = DEFAULT_THRESHOLD,
    min_requests: int = 20,
    min_delta_ms: float = 5.0,
) -> list[Row]:
    """Every group's throughput and latencies, baseline against run, judged."""
    if threshold <= 1:
        raise ValueError("the threshold is a ratio above 1, e.g. 1.25")
    rows: list[Row] = []
    groups_a, groups_b = baseline["groups"], run["groups"]
    for group in sorted(set(groups_a) | set(groups_b), key=lambda g: (g == "total", g)):
        a, b = groups_a.get(group), groups_b.get(group)
        if a is None or b is None:
            continue
        judged = min(a["requests"], b["requests"]) >= min_requests
        rps_a, rps_b = float(a["rps"]), float(b["rps"])
        slower = (rps_b > 0 and rps_a / rps_b > threshold) or rps_b == 0 < rps_a
        rows.append(Row(group, "req/s", rps_a, rps_b, judged, judged and slower))
        for key in LATENCIES:
            la, lb = float(a[key]), float(b[key])
            over = lb > la * threshold and lb - la >= min_delta_ms
            rows.append(Row(group, key, la, lb, judged, judged and over))
    return rows


def render(rows: Sequence[Row], baseline: Path, run: Path, threshold: float) -> str:
    lines = [
        f"baseline: {baseline}",
        f"run:      {run}",
        "",
        f"{'group':<14}{'metric':<8}{'baseline':>10}{'run':>10}{'ratio':>8}",
    ]
    for row in rows:
        ratio = "-" if row.ratio is None else f"{row.ratio:.2f}"
        shown = "req/s" if row.metric == "req/s" else row.metric.removesuffix("_ms") + " ms"
        note = "  WORSE" if row.worse else ("" if row.judged else "  (too few requests)")
        lines.append(
            f"{row.group:<14}{shown:<8}{row.baseline:>10.4g}{row.run:>10.4g}{ratio:>8}{note}"
        )
    worse = [r for r in rows if r.worse]
    lines.append("")
    if worse:
        lines.append(
            f"WORSE: {len(worse)} figure(s) past {threshold:g}× the baseline: "
            + ", ".join(f"{r.group} {r.metric}" for r in worse)
        )
    else:
        lines.append(f"OK: no figure past {threshold:g}× the baseline")
    return "\n".join(lines) + "\n"


def percentiles_over_time(results: Path) -> dict[str, list[tuple[float, float]]]:
    """Seconds since the first row → p50/p95/p99 (ms) of all requests, from Locust's history."""
    series: dict[str, list[tuple[float, float]]] = {"50%": [], "95%": [], "99%": []}
    path = results / "locust_stats_history.csv"
    if not path.exists():
        return series
    start: float | None = None
    with path.open(newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            if row.get("Name") != "Aggregated":
                continue
            t = float(row["Timestamp"])
            start = t if start is None else start
            for key in series:
                value = row.get(key, "N/A")
                if value not in ("N/A", "", "0"):
                    series[key].append((t - start, float(value)))
    return series


def draw(baseline: Path, run: Path, output: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 3.6), dpi=90)
    colours = {"50%": "tab:blue", "95%": "tab:orange", "99%": "tab:red"}
    for results, style, name in ((baseline, "--", "baseline"), (run, "-", "run")):
        for key, points in percentiles_over_time(results).items():
            if points:
                label = f"{name} p{key.rstrip('%')}"
                times, values = [t for t, _ in points], [v for _, v in points]
                ax.plot(times, values, style, color=colours[key], label=label, linewidth=1.3)
    ax.set_xlabel("seconds into the run", fontsize=8)
    ax.set_ylabel("response time (ms), all requests", fontsize=8)
    ax.set_title(f"{baseline.name} (dashed) vs {run.name} (solid)", fontsize=10)
    ax.tick_params(labelsize=7)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(output)
    plt.close(fig)
    return output


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m loadtests.compare", description="Compare two load runs' results folders."
    )
    parser.add_argument("baseline", type=Path)
    parser.add_argument("run", type=Path)
    parser.add_argument("--threshold", type=float, default=DEFAULT_THRESHOLD)
    parser.add_argument("--min-requests", type=int, default=20)
    parser.add_argument("--min-delta-ms", type=float, default=5.0)
    parser.add_argument(
        "--output", type=Path, default=None, help="the PNG (default: RUN/compare.png)"
    )
    args = parser.parse_args(argv)
    if args.threshold <= 1:
        parser.error("--threshold is a ratio above 1, e.g. 1.25")
    rows = compare(
        load_summary(args.baseline),
        load_summary(args.run),
        threshold=args.threshold,
        min_requests=args.min_requests,
        min_delta_ms=args.min_delta_ms,
    )
    text = render(rows, args.baseline, args.run, args.threshold)
    picture = draw(args.baseline, args.run, args.output or args.run / "compare.png")
    (args.run / "compare.txt").write_text(text, encoding="utf-8")
    print(text + f"chart: {picture}", flush=True)
    return 1 if any(row.worse for row in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
