"""`loadtests/run.py`, the orchestration behind `nox -s load`: arguments, commands, settings,
readiness polling and stopping process groups (no servers needed)."""

from __future__ import annotations

import ast
import datetime as dt
import os
import random
import statistics
import sys
from pathlib import Path

import pytest

from loadtests import pacing, run
from loadtests.run import SCENARIOS, LoadOptions
from reference_app.core.config import Settings


def test_acceptance_command_line_parses() -> None:
    options = run.parse_args(["--users", "50", "--duration", "60s"])
    assert (options.users, options.duration, options.scenario) == (50, "60s", "mixed")
    assert options.workers == 2
    assert options.effective_spawn_rate == 10  # every user started within about 5 s


@pytest.mark.parametrize(
    ("text", "seconds"), [("60s", 60), ("90", 90), ("2m", 120), ("1h30m", 5400), ("1m5s", 65)]
)
def test_duration_uses_locust_run_time_format(text: str, seconds: int) -> None:
    assert run.parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "0s", "fast", "10x", "-5s"])
def test_bad_duration_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="duration"):
        run.parse_duration(text)


@pytest.mark.parametrize(
    "argv",
    [
        ["--users", "0"],
        ["--duration", "soon"],
        ["--processes", "0"],
        ["--scenario", "x"],
        ["--duration", "30s", "--warmup", "30s"],
        ["--set", "PATH=/tmp"],
        ["--set", "KIT_LOG_LEVEL"],
    ],
)
def test_invalid_arguments_exit_with_usage_error(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        run.parse_args(argv)
    assert exc.value.code == 2


def test_main_scenarios_lift_rate_limits_and_ratelimit_scenario_sets_a_tiny_one() -> None:
    base = {"PATH": "/bin", "KIT_RATE_LIMIT_LOGIN": "1/1", "KIT_DATABASE_URL": "sqlite://"}
    main = run.app_env(LoadOptions(), "postgresql://db/x", "redis://r/0", base)
    assert main["KIT_RATE_LIMIT_LOGIN"] == run.HIGH_LIMIT
    assert main["KIT_RATE_LIMIT_REGISTER"] == run.HIGH_LIMIT
    assert main["KIT_DATABASE_URL"] == "postgresql://db/x"
    assert main["KIT_REDIS_URL"] == "redis://r/0"
    assert main["PATH"] == "/bin"
    limited = run.app_env(
        LoadOptions(scenario="ratelimit"), "postgresql://db/x", "redis://r/0", base
    )
    assert limited["KIT_RATE_LIMIT_LOGIN"] == "5/60"


def test_stack_runs_as_production_with_a_fresh_strong_secret(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    env = run.app_env(LoadOptions(order_delay_s=0), "postgresql://db/x", "redis://r/0", {})
    assert env["KIT_ORDER_PROCESSING_DELAY_S"] == "0"
    for key, value in env.items():
        if key.startswith("KIT_"):
            monkeypatch.setenv(key, value)
    settings = Settings(_env_file=None)  # refuses a weak secret in prod
    assert settings.env == "prod"
    assert settings.rate_limit_login == run.HIGH_LIMIT
    assert env["KIT_SECRET_KEY"] != run.app_env(LoadOptions(), "", "", {})["KIT_SECRET_KEY"]


def test_server_and_baseline_use_the_same_uvicorn_workers() -> None:
    options = LoadOptions(workers=3)
    server = run.server_command(options, 8001)
    ping = run.ping_command(options, 8002)
    assert server[server.index("--workers") + 1] == ping[ping.index("--workers") + 1] == "3"
    assert server[1:4] == ["-m", "reference_app", "serve"]
    assert "loadtests.ping_app:app" in ping
    assert "--no-access-log" in ping  # `serve` runs uvicorn with access_log=False too


def test_locust_command_is_headless_bounded_and_writes_reports(tmp_path: Path) -> None:
    options = LoadOptions(
        users=50, duration="60s", scenario="guide", processes=-1, min_rps=500, warmup="1m"
    )
    argv = run.locust_command(options, "http://127.0.0.1:9", tmp_path)
    joined = " ".join(argv)
    assert "--headless" in argv
    assert f"--run-time 60s --stop-timeout 10 --csv {tmp_path / 'locust'}" in joined
    assert f"--html {tmp_path / 'report.html'}" in joined
    assert f"--summary-file {tmp_path / 'summary.txt'}" in joined
    assert "--processes -1" in joined
    assert "--min-rps 500" in joined
    assert argv[argv.index("--warmup") + 1] == "60"  # seconds, for the locustfile
    assert argv[-1] == "APIUser"


def test_single_process_locust_gets_no_processes_flag(tmp_path: Path) -> None:
    argv = run.locust_command(LoadOptions(), "http://h", tmp_path)
    assert "--processes" not in argv
    assert "--warmup" not in argv  # the ramp-up counts unless asked otherwise
    assert argv[-3:] == list(SCENARIOS["mixed"].users)


def test_compare_scenario_points_the_ping_user_at_the_baseline(tmp_path: Path) -> None:
    argv = run.locust_command(LoadOptions(scenario="compare"), "http://h", tmp_path, "http://p")
    assert argv[argv.index("--ping-host") + 1] == "http://p"
    assert "PingUser" in argv
    assert SCENARIOS["compare"].ping


def test_every_scenario_names_users_the_locustfile_defines() -> None:
    source = (run.ROOT / "loadtests" / "locustfile.py").read_text()
    for scenario in SCENARIOS.values():
        for user in scenario.users:
            assert f"class {user}(" in source


def test_results_dir_is_timestamped_and_never_reused(tmp_path: Path) -> None:
    now = dt.datetime(2025, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
    first = run.results_dir(tmp_path, now)
    second = run.results_dir(tmp_path, now)
    assert first.name == "20250102T030405Z"
    assert second.name == "20250102T030405Z-2"
    assert first.is_dir()
    assert second.is_dir()


def test_wait_ready_polls_until_200() -> None:
    answers: list[int | OSError] = [OSError("refused"), 503, 200]
    polls: list[float] = []

    def fetch(url: str) -> int:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    run.wait_ready("http://x/health/ready", timeout=10, fetch=fetch, sleep=polls.append)
    assert len(polls) == 2


def test_wait_ready_times_out_naming_the_last_answer() -> None:
    now = [0.0]

    def sleep(seconds: float) -> None:
        now[0] += seconds

    with pytest.raises(TimeoutError, match=r"not ready after 1 s \(last: HTTP 503\)"):
        run.wait_ready(
            "http://x", timeout=1, fetch=lambda _: 503, sleep=sleep, clock=lambda: now[0]
        )


def test_wait_ready_gives_up_at_once_when_a_child_died() -> None:
    def dead() -> None:
        raise RuntimeError("server exited with code 1")

    with pytest.raises(RuntimeError, match="server exited"):
        run.wait_ready("http://x", timeout=60, check=dead, fetch=lambda _: 503)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (exited, not yet reaped by its parent) counts as stopped.
    stat = Path(f"/proc/{pid}/stat").read_text()
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


@pytest.mark.skipif(sys.platform != "linux", reason="reads /proc")
def test_stop_all_stops_the_whole_process_group_including_grandchildren(tmp_path: Path) -> None:
    # A parent that starts a child ignoring SIGTERM, as uvicorn starts its workers.
    script = (
        "import signal, subprocess, sys, time\n"
        "child = subprocess.Popen([sys.executable, '-c', "
        "'import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(600)'])\n"
        "print(child.pid, flush=True)\n"
        "time.sleep(600)\n"
    )
    processes = run.Processes()
    log = tmp_path / "parent.log"
    processes.start("parent", [sys.executable, "-c", script], os.environ, log)
    run.wait_ready(
        "log", timeout=30, interval=0.01, fetch=lambda _: 200 if log.read_text().strip() else 0
    )
    child = int(log.read_text().split()[0])
    assert _alive(child)
    processes.stop_all(timeout=5)
    assert not _alive(child)


def test_check_alive_reports_a_child_that_exited(tmp_path: Path) -> None:
    processes = run.Processes()
    processes.start(
        "server", [sys.executable, "-c", "raise SystemExit(3)"], os.environ, tmp_path / "s.log"
    )
    try:
        with pytest.raises(RuntimeError, match="server exited with code 3"):
            run.wait_ready(
                "x", timeout=30, interval=0.01, check=processes.check_alive, fetch=lambda _: 0
            )
    finally:
        processes.stop_all()


def test_machine_description_names_cores_python_and_the_stack_versions() -> None:
    machine, python, packages = run.describe_machine()
    assert machine.startswith(f"machine: {os.cpu_count()} cores")
    assert python == f"python: {sys.version.split()[0]}"
    assert "fastapi " in packages
    assert "sqlalchemy " in packages


def test_settings_given_with_set_reach_the_stack_last() -> None:
    options = run.parse_args(
        [
            "--scenario",
            "ratelimit",
            "--set",
            "KIT_DB_POOL_SIZE=25",
            "--set",
            "KIT_RATE_LIMIT_LOGIN=2/60",
        ]
    )
    env = run.app_env(options, "postgresql://db/x", "redis://r/0", {})
    assert env["KIT_DB_POOL_SIZE"] == "25"
    assert env["KIT_RATE_LIMIT_LOGIN"] == "2/60"  # over the scenario's own 5/60


class _User:
    """Stands in for a Locust user: the wait function only keeps its schedule on it."""


def test_poisson_pacing_keeps_the_mean_rate_with_irregular_gaps() -> None:
    now = [0.0]
    wait = pacing.poisson_throughput(4.0, rng=random.Random(8), clock=lambda: now[0])
    user = _User()
    gaps = []
    for _ in range(4000):
        gap = wait(user)
        gaps.append(gap)
        now[0] += gap  # the task itself takes no time here
    assert min(gaps) >= 0
    assert abs(statistics.fmean(gaps) - 0.25) < 0.0125  # within 5 % of 1/rate
    assert statistics.pstdev(gaps) > 0.2  # exponential: about as spread as the mean


def test_poisson_pacing_user_behind_schedule_starts_at_once_without_bursting() -> None:
    now = [0.0]
    wait = pacing.poisson_throughput(10.0, rng=random.Random(1), clock=lambda: now[0])
    user = _User()
    wait(user)
    now[0] = 100.0  # a task that ran far past its schedule
    assert wait(user) == 0  # behind: start at once
    # ...but only once: the next start is drawn from now, not from the missed schedule, so the
    # user does not fire its missed tasks back to back.
    assert wait(user) > 0


def test_poisson_pacing_refuses_a_rate_that_is_not_positive() -> None:
    with pytest.raises(ValueError, match="rate"):
        pacing.poisson_throughput(0)


def _request_names_by_class() -> dict[str, set[str]]:
    """The `name=` each Locust user class gives its requests (its bases' included), read from
    the locustfile's source: module constants are resolved, the 429 rename is not a `name=`."""
    tree = ast.parse((run.ROOT / "loadtests" / "locustfile.py").read_text())
    constants = {
        target.id: node.value.value
        for node in tree.body
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant)
        for target in node.targets
        if isinstance(target, ast.Name) and isinstance(node.value.value, str)
    }
    own: dict[str, set[str]] = {}
    bases: dict[str, list[str]] = {}
    for node in tree.body:
        if not isinstance(node, ast.ClassDef):
            continue
        bases[node.name] = [b.id for b in node.bases if isinstance(b, ast.Name)]
        names = own.setdefault(node.name, set())
        for call in ast.walk(node):
            for keyword in getattr(call, "keywords", []) if isinstance(call, ast.Call) else []:
                if keyword.arg != "name":
                    continue
                value = keyword.value
                if isinstance(value, ast.Constant) and isinstance(value.value, str):
                    names.add(value.value)
                elif isinstance(value, ast.Name) and value.id in constants:
                    names.add(constants[value.id])

    def with_bases(cls: str) -> set[str]:
        found = set(own.get(cls, set()))
        for base in bases.get(cls, []):
            found |= with_bases(base)
        return found

    return {cls: with_bases(cls) for cls in own}


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_each_endpoint_is_counted_in_one_slo_group_per_scenario(scenario: str) -> None:
    names = _request_names_by_class()
    groups_of: dict[str, set[str]] = {}
    for user in SCENARIOS[scenario].users:
        assert names[user], f"{user} names no request"
        for name in names[user]:
            group, _, endpoint = name.partition(": ")
            groups_of.setdefault(endpoint, set()).add(group)
    shared = {endpoint: groups for endpoint, groups in groups_of.items() if len(groups) > 1}
    assert not shared, f"endpoints counted in several SLO groups: {shared}"


def test_orders_from_every_user_fall_in_the_orders_group() -> None:
    names = _request_names_by_class()
    orders = {n for user in ("APIUser", "WriterUser") for n in names[user] if "/orders" in n}
    assert orders == {"orders: POST /api/v1/orders"}
