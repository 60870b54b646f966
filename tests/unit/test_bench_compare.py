"""The benchmark gate (`python3 noxfile.py -s bench -- --compare`, tests/benchmarks/compare.py):
two runs of the same code pass however noisy the machine made them; a benchmark made slower
fails, with one summary table and no traceback."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from tests.benchmarks.compare import FLOOR, Run, Verdict, compare, machine_factor, main
from tests.benchmarks.compare import judge as judge_runs


def judge(name: str, old: list[float], new: list[float]) -> Verdict:
    """Judged without a machine reference (as for runs saved before it was recorded)."""
    return judge_runs(name, Run(old), Run(new))


def rounds(median: float, spread: float, n: int = 30, *, seed: int) -> list[float]:
    """`n` round times around `median`, each off by up to ±`spread` (relative)."""
    rng = random.Random(seed)
    return [median * (1 + rng.uniform(-spread, spread)) for _ in range(n)]


def interfered(times: list[float], share: float, slowdown: float, *, seed: int) -> list[float]:
    """The same rounds, a `share` of them slowed by other work on the machine."""
    rng = random.Random(seed)
    return [t * slowdown if rng.random() < share else t for t in times]


def test_two_runs_of_the_same_code_compare_clean() -> None:
    for seed in range(20):
        old = rounds(1e-3, 0.1, seed=seed)
        new = rounds(1e-3, 0.1, seed=seed + 100)
        assert not judge("b", old, new).regressed


def test_rounds_slowed_by_other_work_on_the_machine_are_not_a_regression() -> None:
    # Half the rounds 70 % slower: the median moves past the floor, the fastest rounds do not.
    old = rounds(1e-3, 0.05, seed=1)
    new = interfered(rounds(1e-3, 0.05, seed=2), share=0.6, slowdown=1.7, seed=3)
    verdict = judge("b", old, new)
    assert verdict.change > FLOOR
    assert not verdict.regressed


def test_a_benchmark_made_twice_as_slow_fails() -> None:
    old = rounds(1e-3, 0.1, seed=1)
    new = [t * 2 for t in rounds(1e-3, 0.1, seed=2)]
    verdict = judge("b", old, new)
    assert verdict.regressed
    assert verdict.change == pytest.approx(1.0, abs=0.15)


def test_a_noisy_benchmark_is_allowed_more_than_a_steady_one() -> None:
    steady = judge("b", rounds(1e-3, 0.05, seed=1), rounds(1e-3, 0.05, seed=2))
    noisy = judge("b", rounds(1e-3, 0.6, seed=1), rounds(1e-3, 0.6, seed=2))
    assert steady.allowed == FLOOR
    assert noisy.allowed > 2 * FLOOR
    # 40 % slower everywhere: past the steady benchmark's allowance, within the noisy one's.
    assert judge("b", rounds(1e-3, 0.05, seed=1), rounds(1.4e-3, 0.05, seed=2)).regressed
    assert not judge("b", rounds(1e-3, 0.6, seed=1), rounds(1.4e-3, 0.6, seed=2)).regressed


def test_a_few_rounds_need_a_clear_difference() -> None:
    old = [1.0e-3, 1.1e-3, 0.9e-3]
    new = [1.5e-3, 1.0e-3, 1.6e-3]
    assert not judge("b", old, new).regressed


def test_a_machine_busier_in_the_second_run_is_not_a_regression() -> None:
    # Every benchmark 80 % slower, and the reference work timed beside each too (each reference
    # noisy on its own): the machine changed, not the code.
    old = {f"b{i}": Run(rounds(1e-3, 0.1, seed=i), 1.0e-3, "r") for i in range(9)}
    noise = [0.4, 1.9, 1.6, 3.1, 1.8, 2.2, 1.7, 0.7, 1.8]  # a noisy reference per benchmark
    busy = {
        name: Run([t * 1.8 for t in rounds(1e-3, 0.1, seed=50 + i)], 1.0e-3 * noise[i], "r")
        for i, name in enumerate(old)
    }
    assert machine_factor(old, busy) == pytest.approx(1.8)
    assert not any(v.regressed for v in compare(old, busy))
    # The same slowdown with the machine as fast as before is the code's.
    same_machine = {name: Run(run.rounds, 1.0e-3, "r") for name, run in busy.items()}
    assert all(v.regressed for v in compare(old, same_machine))
    # A quieter machine is not held against the benchmarks.
    assert machine_factor(busy, old) == 1.0
    # A reference of another kind says nothing about this machine: not used.
    other = {name: Run(run.rounds, run.reference_s, "other") for name, run in busy.items()}
    assert machine_factor(old, other) == 1.0


def test_one_benchmark_made_slower_fails_while_the_others_pass() -> None:
    old = {f"b{i}": Run(rounds(1e-3, 0.1, seed=i), 1.0e-3, "r") for i in range(5)}
    new = {name: Run(rounds(1e-3, 0.1, seed=60 + i), 1.0e-3, "r") for i, name in enumerate(old)}
    new["b2"] = Run([t * 2 for t in new["b2"].rounds], 1.0e-3, "r")
    assert [v.name for v in compare(old, new) if v.regressed] == ["b2"]


def test_a_benchmark_whose_median_moves_between_runs_is_allowed_that_much() -> None:
    # Tight rounds within each run, but the median moved by 60 % between earlier runs of the
    # same code (a multi-threaded benchmark on a shared machine): +36 % is within its range.
    earlier = [{"b": Run(rounds(m, 0.02, seed=i))} for i, m in enumerate([1.0, 1.6, 1.2, 1.4])]
    old = earlier[-1]
    new = {"b": Run(rounds(1.9, 0.02, seed=9))}
    assert judge("b", old["b"].rounds, new["b"].rounds).regressed  # judged on one run: slower
    verdict = compare(old, new, earlier)[0]
    assert verdict.allowed == pytest.approx(0.6 / 1.3, rel=0.05)
    assert not verdict.regressed
    assert compare(old, {"b": Run(rounds(3.0, 0.02, seed=9))}, earlier)[0].regressed


def test_one_odd_run_in_the_history_does_not_widen_the_allowance() -> None:
    # Four steady runs and one saved while the benchmark was twice as slow.
    earlier = [
        {"b": Run(rounds(m, 0.02, seed=i))} for i, m in enumerate([1.0, 1.02, 2.0, 0.98, 1.0])
    ]
    verdict = compare(earlier[-1], {"b": Run(rounds(1.5, 0.02, seed=9))}, earlier)[0]
    assert verdict.allowed == FLOOR
    assert verdict.regressed


def save(storage: Path, number: int, data: dict[str, list[float]], load1: float = 0.5) -> None:
    folder = storage / "Linux-CPython-3.11-64bit"
    folder.mkdir(parents=True, exist_ok=True)
    benchmarks = [
        {
            "fullname": f"tests/benchmarks/test_x.py::{name}",
            "stats": {"data": times},
            "extra_info": {"reference_s": 1e-3, "reference": "r", "load1": load1, "cpus": 2},
        }
        for name, times in data.items()
    ]
    path = folder / f"{number:04d}_abc_20261204_000000.json"
    path.write_text(json.dumps({"benchmarks": benchmarks}))


def test_the_command_prints_one_summary_and_fails_on_the_slower_benchmark(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([str(tmp_path)]) == 2  # nothing saved yet: this run is the baseline
    save(
        tmp_path,
        1,
        {"test_bench_a[x]": rounds(1e-3, 0.1, seed=1), "test_bench_b": rounds(1e-3, 0.1, seed=2)},
    )
    save(
        tmp_path,
        2,
        {"test_bench_a[x]": rounds(1e-3, 0.1, seed=3), "test_bench_b": rounds(3e-3, 0.1, seed=4)},
    )
    capsys.readouterr()

    assert main([str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "bench compare: 1 slower: b" in out
    assert "a[x]" in out  # parameters shown, not taken for markup
    assert "Traceback" not in out
    assert max(len(line) for line in out.splitlines()) <= 100


def test_a_busy_machine_is_named_in_the_summary(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    save(tmp_path, 1, {"test_bench_a": rounds(1e-3, 0.1, seed=1)})
    save(tmp_path, 2, {"test_bench_a": rounds(1e-3, 0.1, seed=2)}, load1=7.5)
    assert main([str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "busy during this run (load average up to 7.5 on 2 cores)" in out
    assert "the saved run" not in out
