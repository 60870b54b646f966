"""`python3 noxfile.py -s bench -- --compare`: is this run slower than the last saved one?
(guide: "Benchmark Testing"; docs/performance.md, "Regression gate").

pytest-benchmark's own `--benchmark-compare-fail=median:25%` applies one threshold to every
benchmark and looks at one number: on a shared machine a benchmark whose rounds spread by ±40 %
"regresses" by 25 % between two runs of the same code, and the failure ends in a traceback. This
gate judges each benchmark by its own spread, with three conditions that must all hold:

1. its median is slower by more than its allowance, the largest of `FLOOR`, `SPREAD_FACTOR` times
   the larger relative interquartile range (IQR / median) of the two runs, and the spread of its
   median over the last `HISTORY` saved runs (three median absolute deviations, relative, from 3
   runs on): a benchmark whose median strays by 60 % between runs of the same code is allowed
   60 %;
2. its fastest round is slower by more than the allowance too: interference from other work
   on the machine adds time to some rounds, a real regression slows every round, the fastest too;
3. the rounds of the new run are slower than the old ones by a one-sided Mann-Whitney U test
   (scipy) at `ALPHA`, so that a handful of rounds cannot fail the gate by chance.

Before the conditions are checked, the new times are divided by how much slower the machine was
in the new run (never multiplied when it was faster): the conftest times a fixed piece of
reference work just before and after every benchmark (`extra_info["reference_s"]`), and
`machine` is the median, over the run, of the reference's new/old ratio (one benchmark's
reference is as noisy as the benchmark; the median of all of them is not). Work that others
start on the machine between two runs slows the reference as much as the benchmarks; a change in
the kit's code slows only the benchmarks it touches. The load average is saved too, and the
summary says when either run had the machine busier than it has cores.

Each run is saved with every round's time (`--benchmark-save-data`); the comparison reads the
newest two files in the storage directory and prints one table, a row per benchmark, then exits
1 when any regressed, 2 when there is nothing to compare with, else 0.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.table import Table
from scipy.stats import mannwhitneyu

FLOOR = 0.30
SPREAD_FACTOR = 2.0
ALPHA = 0.01
HISTORY = 5


@dataclass(frozen=True)
class Run:
    """One benchmark in one saved run: its rounds' times and the reference work's time."""

    rounds: list[float]
    reference_s: float | None = None
    reference: str | None = None  # which reference work was timed
    load1: float | None = None  # the machine's 1-minute load average then
    cpus: int | None = None


@dataclass(frozen=True)
class Verdict:
    name: str
    old_median: float
    new_median: float  # as measured
    machine: float  # how much slower the machine was in the new run (machine_factor)
    allowed: float  # the allowance, as a fraction of the old median
    min_change: float  # fastest round, new / machine / old - 1
    p_value: float
    regressed: bool

    @property
    def change(self) -> float:
        """The median's change with the machine's change of speed taken out."""
        return self.new_median / self.machine / self.old_median - 1


def relative_spread(rounds: Sequence[float]) -> float:
    """IQR / median of one run's round times."""
    q1, _q2, q3 = statistics.quantiles(rounds, n=4, method="inclusive")
    return (q3 - q1) / statistics.median(rounds)


def history_spread(medians: Sequence[float]) -> float:
    """How far a benchmark's median strays between runs: three median absolute deviations of
    its medians in earlier runs, relative to their median (about two standard deviations, and
    not widened by one odd run, such as a regression that was saved); 0 with fewer than 3."""
    if len(medians) < 3:
        return 0.0
    middle = statistics.median(medians)
    return 3 * statistics.median(abs(m - middle) for m in medians) / middle


def judge(
    name: str, old: Run, new: Run, machine: float = 1.0, history: Sequence[float] = ()
) -> Verdict:
    """One benchmark's verdict from the saved run (`old`) and this one, on a machine `machine`
    times slower now than then; `history` holds its medians in the runs saved before."""
    scaled = [t / machine for t in new.rounds]
    within = max(relative_spread(old.rounds), relative_spread(scaled))
    allowed = max(FLOOR, SPREAD_FACTOR * within, history_spread(history))
    old_median, new_median = statistics.median(old.rounds), statistics.median(new.rounds)
    min_change = min(scaled) / min(old.rounds) - 1
    p_value = float(mannwhitneyu(scaled, old.rounds, alternative="greater").pvalue)
    regressed = (
        new_median / machine > old_median * (1 + allowed)
        and min_change > allowed
        and p_value < ALPHA
    )
    return Verdict(name, old_median, new_median, machine, allowed, min_change, p_value, regressed)


def machine_factor(old: dict[str, Run], new: dict[str, Run]) -> float:
    """How much slower the machine was in the new run: the median of the reference's new/old
    time over the benchmarks that timed the same reference in both runs; 1.0 without any, and
    when the machine was as fast or faster."""
    ratios = [
        new[name].reference_s / old[name].reference_s  # type: ignore[operator]
        for name in new
        if name in old
        and new[name].reference_s
        and old[name].reference_s
        and new[name].reference == old[name].reference
    ]
    # Only a slower machine is taken out: benchmarks that the reference's speed-up does not
    # reach (a short single-threaded one) would otherwise look slower on a quieter machine.
    return max(1.0, statistics.median(ratios)) if ratios else 1.0


def load_runs(path: Path) -> dict[str, Run]:
    """Every benchmark of one saved run (none for runs saved without their rounds)."""
    document = json.loads(path.read_text())
    runs = {}
    for b in document["benchmarks"]:
        if len(b["stats"].get("data") or []) >= 2:
            info = b.get("extra_info") or {}
            runs[b["fullname"]] = Run(
                b["stats"]["data"],
                info.get("reference_s"),
                info.get("reference"),
                info.get("load1"),
                info.get("cpus"),
            )
    return runs


def saved_runs(storage: Path) -> list[Path]:
    """Saved runs, oldest first (pytest-benchmark numbers them within each machine's folder)."""
    runs = storage.glob("*/[0-9][0-9][0-9][0-9]_*.json")
    return sorted(runs, key=lambda p: (p.stat().st_mtime, p.name))


def compare(
    old: dict[str, Run], new: dict[str, Run], earlier: Sequence[dict[str, Run]] = ()
) -> list[Verdict]:
    """Verdicts for the benchmarks in both runs; `earlier` are the saved runs up to and
    including `old`, whose medians measure each benchmark's spread between runs."""
    machine = machine_factor(old, new)
    return [
        judge(
            name,
            old[name],
            new[name],
            machine,
            [statistics.median(run[name].rounds) for run in earlier if name in run],
        )
        for name in sorted(new)
        if name in old
    ]


def busiest(runs: dict[str, Run]) -> tuple[float, int] | None:
    """The highest load average recorded in a run, with the machine's CPU count."""
    loads = [(r.load1, r.cpus or 1) for r in runs.values() if r.load1 is not None]
    return max(loads) if loads else None


def _duration(seconds: float) -> str:
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6)):
        if seconds >= scale:
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds / 1e-9:.3g} ns"


def short_name(fullname: str) -> str:
    return fullname.rpartition("::")[2].removeprefix("test_bench_")


def summary(verdicts: Sequence[Verdict], baseline: str) -> Table:
    """Fits a 100-column window: one row per benchmark."""
    machine = verdicts[0].machine if verdicts else 1.0
    title = f"compared with {baseline}; machine {machine:.2f}× as slow as then (taken out)"
    table = Table(title=title, title_justify="left")
    table.add_column("benchmark", overflow="fold")
    table.add_column("before", justify="right")
    table.add_column("now", justify="right")
    table.add_column("change", justify="right")
    table.add_column("allowed", justify="right")
    table.add_column("fastest", justify="right")
    table.add_column("p", justify="right")
    table.add_column("verdict")
    for v in verdicts:
        table.add_row(
            escape(short_name(v.name)),
            _duration(v.old_median),
            _duration(v.new_median),
            f"{v.change:+.0%}",
            f"+{v.allowed:.0%}",
            f"{v.min_change:+.0%}",
            f"{v.p_value:.2g}",
            "[red]slower[/]" if v.regressed else "[green]ok[/]",
        )
    return table


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.benchmarks.compare", description=__doc__)
    parser.add_argument("storage", type=Path, help="pytest-benchmark's storage directory")
    args = parser.parse_args(argv)
    console = Console(width=100)
    runs = [r for r in saved_runs(args.storage) if load_runs(r)]
    if len(runs) < 2:
        console.print(
            "bench compare: no earlier run saved with its rounds; this one is the baseline"
        )
        return 2
    baseline, latest = runs[-2], runs[-1]
    earlier = [load_runs(run) for run in runs[-HISTORY - 1 : -1]]
    verdicts = compare(earlier[-1], load_runs(latest), earlier)
    console.print(summary(verdicts, baseline.name))
    for when, runs_of in (("the saved", earlier[-1]), ("this", load_runs(latest))):
        load = busiest(runs_of)
        if load and load[0] > load[1]:
            console.print(
                f"[yellow]the machine was busy during {when} run (load average up to "
                f"{load[0]:.1f} on {load[1]} cores): a verdict of slower may be the machine's; "
                "compare two runs on a quiet machine[/]"
            )
    slower = [short_name(v.name) for v in verdicts if v.regressed]
    if slower:
        console.print(f"[red]bench compare: {len(slower)} slower[/]: {', '.join(slower)}")
        return 1
    console.print(f"bench compare: {len(verdicts)} benchmarks, none slower")
    return 0


if __name__ == "__main__":
    sys.exit(main())
