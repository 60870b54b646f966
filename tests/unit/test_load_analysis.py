"""What a load run makes of its measurements: the profile's table (loadtests/profiling.py), two
runs compared (loadtests/compare.py), the Prometheus side (loadtests/observe.py)."""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from loadtests import compare, observe, profiling

SPAWNED = 'process 7:"python -c from multiprocessing.spawn import spawn_main; spawn_main(fd=3)"'


def test_top_functions_ranks_by_self_time_and_drops_process_frames() -> None:
    stacks = [
        f'process 1:"python -m reference_app serve";{SPAWNED};'
        "run (asyncio/runners.py:10);handle (app/api.py:5);hash (argon2/low_level.py:9) 30",
        f'process 1:"python -m reference_app serve";{SPAWNED};'
        "run (asyncio/runners.py:10);handle (app/api.py:7) 10",
        'process 1:"python -m reference_app serve";run (asyncio/runners.py:12) 60',
        "not a stack line",
    ]
    functions, samples = profiling.top_functions(stacks)
    assert samples == 100
    by_name = {f.function: f for f in functions}
    assert [f.function for f in functions][:3] == [
        "run (asyncio/runners.py)",  # one function, whatever the line
        "hash (argon2/low_level.py)",
        "handle (app/api.py)",
    ]
    assert (
        by_name["run (asyncio/runners.py)"].self_samples,
        by_name["run (asyncio/runners.py)"].total_samples,
    ) == (60, 100)
    assert (
        by_name["handle (app/api.py)"].self_samples,
        by_name["handle (app/api.py)"].total_samples,
    ) == (10, 40)
    assert not any("spawn_main" in name or "process" in name for name in by_name)


def test_profile_table_shows_shares_of_all_samples() -> None:
    functions, samples = profiling.top_functions(["a (x.py:1);b (y.py:2) 3", "a (x.py:1) 1"])
    table = profiling.render_top(functions, samples)
    assert "  75.0%    75.0%  b (y.py)" in table
    assert "  25.0%   100.0%  a (x.py)" in table


def test_recorder_follows_the_server_and_its_workers_without_pausing_them(tmp_path: Path) -> None:
    recorder = profiling.Recorder(tmp_path, 4242)
    svg, raw = recorder.commands()
    for argv in (svg, raw):
        assert argv[argv.index("--pid") + 1] == "4242"
        assert {"--subprocesses", "--nonblocking"} <= set(argv)
    assert svg[svg.index("--format") + 1] == "flamegraph"
    assert raw[raw.index("--output") + 1] == str(tmp_path / "stacks.txt")


def _summary(group_figures: dict[str, tuple[int, float, int, int, int]]) -> dict[str, Any]:
    return {
        "groups": {
            group: {
                "requests": n,
                "failures": 0,
                "rps": rps,
                "p50_ms": p50,
                "p95_ms": p95,
                "p99_ms": p99,
            }
            for group, (n, rps, p50, p95, p99) in group_figures.items()
        }
    }


BASE = _summary({"catalog": (500, 50.0, 8, 30, 60), "total": (500, 50.0, 8, 30, 60)})


def test_a_run_compared_with_itself_is_not_worse() -> None:
    rows = compare.compare(BASE, BASE)
    assert not any(row.worse for row in rows)
    assert {row.ratio for row in rows} == {1.0}


def test_slower_percentiles_past_the_threshold_are_worse() -> None:
    slowed = _summary({"catalog": (480, 48.0, 50, 80, 120), "total": (480, 48.0, 50, 80, 120)})
    worse = {(row.group, row.metric) for row in compare.compare(BASE, slowed) if row.worse}
    assert ("catalog", "p50_ms") in worse
    assert ("catalog", "req/s") not in worse  # 4 % fewer requests: within 1.25


def test_lost_throughput_is_worse_too() -> None:
    starved = _summary({"catalog": (300, 30.0, 8, 30, 60)})
    worse = [row.metric for row in compare.compare(BASE, starved) if row.worse]
    assert worse == ["req/s"]


def test_a_millisecond_more_or_a_handful_of_requests_judges_nothing() -> None:
    small = _summary({"catalog": (500, 50.0, 10, 33, 63)})  # +2/+3 ms: ratios up to 1.25
    assert not any(row.worse for row in compare.compare(BASE, small))
    few = _summary({"catalog": (5, 0.5, 80, 300, 600)})
    rows = compare.compare(BASE, few)
    assert not any(row.worse for row in rows)
    assert not any(row.judged for row in rows)


def _results(path: Path, summary: dict[str, Any], p50: float) -> Path:
    path.mkdir()
    (path / "summary.json").write_text(json.dumps(summary))
    with (path / "locust_stats_history.csv").open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["Timestamp", "Name", "50%", "95%", "99%"])
        for t in range(10):
            writer.writerow([1000 + t, "Aggregated", p50, p50 * 3, p50 * 5])
            writer.writerow([1000 + t, "catalog: GET /x", p50, p50 * 3, p50 * 5])
    return path


def test_compare_command_prints_ratios_draws_both_runs_and_exits_1_when_worse(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = _results(tmp_path / "base", BASE, 8)
    slowed = _results(tmp_path / "slowed", _summary({"catalog": (500, 50.0, 40, 90, 150)}), 40)
    assert compare.main([str(base), str(base)]) == 0
    assert compare.main([str(base), str(slowed)]) == 1
    out = capsys.readouterr().out
    assert "catalog       p50 ms           8        40    5.00  WORSE" in out
    picture = slowed / "compare.png"
    assert picture.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "WORSE" in (slowed / "compare.txt").read_text()
    series = compare.percentiles_over_time(slowed)
    assert series["50%"][:2] == [(0.0, 40.0), (1.0, 40.0)]  # the aggregate row only


def test_every_dashboard_panel_has_a_query_and_a_title() -> None:
    panels = observe.dashboard_panels()
    titles = {title for title, _, _ in panels}
    assert len(panels) == len(json.loads(observe.DASHBOARD.read_text())["panels"])
    assert {"Requests per second by route", "p95 latency by route"} <= titles
    assert any("db_pool_checked_out_connections" in q for _, qs, _ in panels for q, _ in qs)
    assert any("cache_hits_total" in q for _, qs, _ in panels for q, _ in qs)


def test_legend_format_is_filled_from_the_series_labels() -> None:
    assert (
        observe._label({"endpoint": "/api/v1/items", "job": "api"}, "{{endpoint}}")
        == "/api/v1/items"
    )
    assert observe._label({"__name__": "up", "job": "api", "instance": "h:1"}, "") == "api"


def test_run_config_scrapes_each_part_with_the_kits_rules() -> None:
    config = observe.run_config({"api": ["127.0.0.1:8000"], "worker": ["127.0.0.1:9808"]})
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert jobs["api"]["static_configs"] == [{"targets": ["127.0.0.1:8000"]}]
    assert set(jobs) == {"api", "worker"}
    assert config["rule_files"] == [str(observe.RULES)]


def _promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        if os.environ.get("CI"):
            pytest.fail(observe.INSTALL_HINT)
        pytest.skip(observe.INSTALL_HINT)
    return found


@pytest.mark.slow
@pytest.mark.parametrize(
    "check",
    [
        ["check", "config", str(observe.STACK / "prometheus" / "prometheus.yml")],
        ["check", "rules", str(observe.RULES)],
    ],
    ids=["compose-config", "rules"],
)
def test_promtool_accepts_the_compose_config_and_the_rules(check: list[str]) -> None:
    done = subprocess.run([_promtool(), *check], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout


@pytest.mark.slow
def test_promtool_accepts_the_config_a_run_writes(tmp_path: Path) -> None:
    config = tmp_path / "prometheus.yml"
    config.write_text(json.dumps(observe.run_config({"api": ["127.0.0.1:1"]})))
    done = subprocess.run(
        [_promtool(), "check", "config", str(config)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr


def _compose() -> dict[str, Any]:
    import yaml  # type: ignore[import-untyped]

    data: dict[str, Any] = yaml.safe_load((observe.STACK / "compose.yaml").read_text())
    return data


def test_compose_brings_up_the_whole_stack_with_the_kits_files() -> None:
    services = _compose()["services"]
    assert {"api", "worker", "postgres", "redis", "prometheus", "grafana"} <= set(services)
    for service in services.values():
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0]
            if source.startswith("./"):
                assert (observe.STACK / source).exists(), volume  # every mounted file is here
    grafana_mounts = {v.split(":")[1]: v.split(":")[0] for v in services["grafana"]["volumes"]}
    dashboards = grafana_mounts["/var/lib/grafana/dashboards"]
    assert (observe.STACK / dashboards / observe.DASHBOARD.name).exists()


def test_compose_prometheus_scrapes_the_ports_the_services_listen_on() -> None:
    import yaml

    services = _compose()["services"]
    config = yaml.safe_load((observe.STACK / "prometheus" / "prometheus.yml").read_text())
    targets = {
        job["job_name"]: job["static_configs"][0]["targets"][0] for job in config["scrape_configs"]
    }
    assert targets["api"] == "api:8000"
    assert "--port 8000" in services["api"]["command"]
    assert targets["worker"] == "worker-metrics:9808"
    assert "--port 9808" in services["worker-metrics"]["command"]
    provisioning = yaml.safe_load(
        (observe.STACK / "grafana" / "provisioning" / "datasources" / "prometheus.yml").read_text()
    )
    uids = {
        panel["datasource"]["uid"] for panel in json.loads(observe.DASHBOARD.read_text())["panels"]
    }
    assert uids == {provisioning["datasources"][0]["uid"]}  # the panels find their datasource
