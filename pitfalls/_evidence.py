"""What a pitfall is and what its evidence looks like, plus the measuring helpers the pitfalls
share (guide: "Common Pitfalls and Solutions")."""

from __future__ import annotations

import math
import os
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

POSTGRESQL = "postgresql"
REDIS = "redis"
SERVER_NAMES = {POSTGRESQL: "PostgreSQL", REDIS: "Redis"}
# Where the docs site lives: mkdocs.yml's `site_url`, which `python3 noxfile.py -s docs -- serve`
# serves; KIT_DOCS_URL names a published copy (the same variable the site is built with).
DEFAULT_DOCS_URL = "http://127.0.0.1:8001/"


def docs_url() -> str:
    return os.environ.get("KIT_DOCS_URL") or DEFAULT_DOCS_URL


@dataclass(frozen=True)
class Pitfall:
    """A stable ID (never renumbered), its package, what it is called, and the servers its
    evidence needs (the entries are in `pitfalls/catalog.toml`).

    `needs` lists the real servers without which the evidence would be fake (SQLite has no
    concurrent writers and no PostgreSQL planner; fakeredis runs in-process), so the runner
    says so instead of running it on the embedded default.
    """

    id: str
    slug: str
    title: str
    summary: str
    guide: str
    needs: frozenset[str] = frozenset()

    @property
    def package(self) -> str:
        """The package that holds its code, e.g. `pitfalls.pf001_n_plus_one`."""
        return f"pitfalls.{self.id.lower()}_{self.slug}"

    @property
    def page(self) -> str:
        return f"docs/pitfalls/{self.id}.md"

    @property
    def url(self) -> str:
        """The page's address on the docs site, to paste into a review."""
        return f"{docs_url().rstrip('/')}/pitfalls/{self.id}/"


@dataclass
class Evidence:
    """One table of measurements. `shown` is True when the wrong version showed the defect and
    the right one did not, which is what `run` checks."""

    columns: Sequence[str]
    rows: Sequence[Sequence[object]]
    shown: bool
    verdict: str
    notes: list[str] = field(default_factory=list)
    artifacts: list[Path] = field(default_factory=list)


@dataclass(frozen=True)
class Interval:
    """When one request (or task) started and ended, in `time.perf_counter` seconds."""

    start: float
    end: float

    @property
    def duration(self) -> float:
        return self.end - self.start


def max_overlap(intervals: Sequence[Interval]) -> int:
    """The largest number of intervals in progress at one moment (1: they ran one by one)."""
    events = sorted([(i.start, 1) for i in intervals] + [(i.end, -1) for i in intervals])
    running = peak = 0
    for _, step in events:  # at equal times the end (-1) sorts first: touching is not overlap
        running += step
        peak = max(peak, running)
    return peak


def percentile(values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100) of a non-empty sequence."""
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


@contextmanager
def stopwatch() -> Iterator[list[float]]:
    """`with stopwatch() as t: ...` then `t[0]` is the elapsed seconds."""
    elapsed: list[float] = []
    start = time.perf_counter()
    try:
        yield elapsed
    finally:
        elapsed.append(time.perf_counter() - start)


def ms(seconds: float) -> str:
    return f"{seconds * 1000:,.1f} ms"


def line_chart(
    path: Path,
    title: str,
    x: Sequence[float],
    panels: Sequence[tuple[str, dict[str, Sequence[float]]]],
) -> Path | None:
    """Write one PNG with a log-log panel per (y label, {series: values}); None when matplotlib
    (the `pitfalls` dependency group) is not installed."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    fig, axes = plt.subplots(1, len(panels), figsize=(5.5 * len(panels), 4.2))
    for ax, (label, series) in zip(axes if len(panels) > 1 else [axes], panels, strict=True):
        for name, values in series.items():
            ax.plot(x, values, marker="o", label=name)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("N")
        ax.set_ylabel(label)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
    fig.suptitle(title)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
