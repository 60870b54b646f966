"""The perf engineer's workflows of `nox -s load` end to end, with short bounded loads on
loopback (docs/performance-engineering.md):

* `--host` against a stack this test started: the run seeds nothing;
* Locust's distributed mode: a master and two workers merge their statistics;
* `--compare`: a run against itself passes, against a deliberately slowed deployment fails;
* the run's own stack with `--profile` and `--prometheus`: a flame graph naming the kit's
  functions, and every Grafana dashboard query answered by the run's Prometheus.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from sqlalchemy.engine import make_url

from loadtests import compare, observe, run
from loadtests.processes import stop_group
from patterns.testing.backends import free_port
from patterns.testing.plugin import KitServices

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
RUN_TIMEOUT_S = 240


@dataclass(frozen=True)
class Deployment:
    url: str  # the kit's app
    slowed_url: str  # the same app and database, every request delayed
    database_url: str
    accounts_csv: Path


def _stack_env(database_url: str, redis_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KIT_")}
    env.update(
        KIT_ENV="prod",
        KIT_SECRET_KEY=secrets.token_urlsafe(48),
        KIT_DATABASE_URL=database_url,
        KIT_REDIS_URL=redis_url,
        KIT_RATE_LIMIT_LOGIN=run.HIGH_LIMIT,
        KIT_LOG_LEVEL="WARNING",
        PYTHONPATH=str(ROOT),
    )
    return env


@pytest.fixture(scope="module")
def deployment(
    kit_services: KitServices, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Deployment]:
    """A deployment the load runs did not start: migrated, seeded (10 demo users, 100 items) and
    served here, once normally and once slowed down."""
    server_url = kit_services.postgres.url
    name = f"kit_load_host_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    database_url = make_url(server_url).set(database=name).render_as_string(hide_password=False)
    env = _stack_env(database_url, kit_services.redis_url)
    work = tmp_path_factory.mktemp("deployment")
    started: list[subprocess.Popen[bytes]] = []
    try:
        for step in (["migrate"], ["seed", "--force", "--users", "10", "--items", "100"]):
            done = subprocess.run(
                [sys.executable, "-m", "reference_app", *step],
                env=env, cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
            )  # fmt: skip
            assert done.returncode == 0, done.stdout + done.stderr
        urls = []
        for app in ("reference_app.main:create_app", "tests.integration.load_slow_app:create_app"):
            port = free_port()
            log = (work / f"server-{port}.log").open("ab")
            started.append(
                subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "uvicorn",
                        app,
                        "--factory",
                        "--host",
                        "127.0.0.1",
                        "--port",
                        str(port),
                        "--no-access-log",
                    ],
                    env=env,
                    cwd=ROOT,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            )
            log.close()
            url = f"http://127.0.0.1:{port}"
            run.wait_ready(f"{url}/health/ready", timeout=60, check=_alive(started[-1], work))
            urls.append(url)
        accounts_csv = work / "accounts.csv"
        accounts_csv.write_text(
            "email,password,role\n"
            + "".join(f"demo{i}@example.com,demo-password,user\n" for i in range(1, 6))
            + "manager@example.com,demo-password,manager\n"
        )
        yield Deployment(urls[0], urls[1], database_url, accounts_csv)
    finally:
        for proc in started:
            stop_group(proc, 20)
        with psycopg.connect(server_url, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


def _alive(proc: subprocess.Popen[bytes], work: Path) -> Callable[[], None]:
    def check() -> None:
        if proc.poll() is not None:
            logs = "".join(p.read_text() for p in work.glob("server-*.log"))
            raise RuntimeError(f"server exited with {proc.returncode}:\n{logs}")

    return check


def _load(args: list[str], results: Path, env: dict[str, str] | None = None) -> tuple[int, Path]:
    """`python -m loadtests.run ARGS`; its exit code and its results folder."""
    done = subprocess.run(
        [sys.executable, "-m", "loadtests.run", *args, "--results", str(results)],
        env=env or {**os.environ, "PYTHONPATH": str(ROOT)},
        cwd=ROOT, capture_output=True, text=True, timeout=RUN_TIMEOUT_S, check=False,
    )  # fmt: skip
    folders = sorted(p for p in results.iterdir() if p.is_dir())
    assert folders, done.stdout + done.stderr
    return done.returncode, folders[-1]


def _counts(database_url: str) -> tuple[int, int, int]:
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT (SELECT count(*) FROM users), (SELECT count(*) FROM items),"
            " (SELECT count(*) FROM inventories)"
        ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1]), int(row[2])


def _figures(results: Path) -> dict[str, dict[str, float]]:
    groups: dict[str, dict[str, float]] = json.loads((results / "summary.json").read_text())[
        "groups"
    ]
    return groups


def test_host_drives_a_deployment_it_did_not_start_and_seeds_nothing(
    deployment: Deployment, tmp_path: Path
) -> None:
    before = _counts(deployment.database_url)
    code, results = _load(
        ["--host", deployment.url, "--scenario", "guide", "--users", "3", "--spawn-rate", "3",
         "--duration", "6s", "--user-rate", "2", "--accounts-csv", str(deployment.accounts_csv),
         "--item-ids", "100"],
        tmp_path,
    )  # fmt: skip
    log = (results / "run.txt").read_text()
    assert code in (0, 1), log  # 1: an SLO missed on a busy machine; the run itself worked
    groups = _figures(results)
    assert groups["profile"]["requests"] > 0
    assert groups["orders"]["requests"] > 0
    assert groups["auth"]["requests"] == 3  # each user logged in once, as a given account
    assert all(g["failures"] == 0 for g in groups.values()), groups
    assert _counts(deployment.database_url) == before  # no user, item or stock added
    steps = [line.split(":", 1)[0] for line in log.splitlines()]
    assert "seed" not in steps
    assert "migrate" not in steps
    assert "locust" in steps
    assert "demo-password" not in log  # passwords never reach the recorded commands


def test_master_and_two_workers_on_loopback_merge_their_statistics(
    deployment: Deployment, tmp_path: Path
) -> None:
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    common = ["--scenario", "browse", "--master-port", str(port)]
    workers = []
    try:
        for n in (1, 2):
            root = tmp_path / f"worker{n}"
            root.mkdir()
            workers.append(
                subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "loadtests.run",
                        "--worker",
                        "--master-host",
                        "127.0.0.1",
                        *common,
                        "--user-rate",
                        "4",
                        "--duration",
                        "6s",
                        "--results",
                        str(root),
                    ],
                    env=env,
                    cwd=ROOT,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            )
        master_root = tmp_path / "master"
        master_root.mkdir()
        code, results = _load(
            ["--host", deployment.url, "--master", "--expect-workers", "2",
             "--master-bind-host", "127.0.0.1", *common, "--users", "4", "--spawn-rate", "4",
             "--duration", "6s", "--item-ids", "100"],
            master_root,
            env,
        )  # fmt: skip
        outputs = []
        for worker in workers:
            out, _ = worker.communicate(timeout=60)
            outputs.append(out.decode())
            assert worker.returncode == 0, outputs[-1]
    finally:
        for worker in workers:
            stop_group(worker, 20)
    assert code in (0, 1), (results / "locust.log").read_text()
    summary = json.loads((results / "summary.json").read_text())
    reported = summary["workers"]
    assert len(reported) == 2, summary
    assert all(count > 0 for count in reported.values()), reported  # both did part of the load
    assert sum(reported.values()) == summary["groups"]["total"]["requests"]
    assert "statistics merged from 2 workers" in (results / "summary.txt").read_text()


def test_compare_passes_a_run_against_itself_and_fails_a_slowed_one(
    deployment: Deployment, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    browse = ["--scenario", "browse", "--users", "4", "--spawn-rate", "4", "--duration", "6s",
              "--user-rate", "5", "--item-ids", "100"]  # fmt: skip
    code, baseline = _load(["--host", deployment.url, *browse], tmp_path / "a")
    assert code in (0, 1)
    assert compare.main([str(baseline), str(baseline)]) == 0
    code, slowed = _load(
        ["--host", deployment.slowed_url, *browse, "--compare", str(baseline)], tmp_path / "b"
    )
    assert code != 0
    report = (slowed / "compare.txt").read_text()
    assert "WORSE" in report
    assert any(line.startswith("catalog") and "p50" in line and "WORSE" in line
               for line in report.splitlines())  # fmt: skip
    assert (slowed / "compare.png").stat().st_size > 10_000


def _need_prometheus() -> None:
    if shutil.which("prometheus") is None:
        if os.environ.get("CI"):
            pytest.fail(observe.INSTALL_HINT)
        pytest.skip(observe.INSTALL_HINT)


def test_own_stack_with_profile_and_prometheus(kit_services: KitServices, tmp_path: Path) -> None:
    """The run's own stack (on this test run's servers): the flame graph names the kit's
    functions, the charts are drawn, every dashboard query has data in the run's Prometheus,
    and the stack stops cleanly (no Celery error at shutdown)."""
    _need_prometheus()
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "KIT_TEST_POSTGRES_URL": kit_services.postgres.url,
        "KIT_TEST_REDIS_URL": kit_services.redis_url,
    }
    code, results = _load(
        ["--users", "4", "--spawn-rate", "4", "--duration", "10s", "--user-rate", "3",
         "--seed-users", "10", "--seed-items", "200", "--order-delay", "0", "--workers", "2",
         "--profile", "--prometheus"],
        tmp_path,
        env,
    )  # fmt: skip
    assert code in (0, 1), (results / "run.txt").read_text()

    svg = (results / "profile" / "flamegraph.svg").read_text()
    assert svg.lstrip().startswith("<?xml")
    assert "reference_app/" in svg  # the kit's own functions are in it
    top = (results / "profile" / "top.txt").read_text()
    assert "self %" in top
    assert "samples at 100/s" in top

    charts = sorted((results / "prometheus").glob("*.png"))
    assert len(charts) == len(observe.dashboard_panels())
    worker_log = (results / "worker.log").read_text()
    assert "Unrecoverable error" not in worker_log
    assert "postgres: postgres:" not in (results / "run.txt").read_text()

    with observe.replay(results) as (api, _start, end):
        answers = observe.evaluate_panels(api, end)
    empty = [query for query, series in answers.items() if series == 0]
    assert not empty, f"dashboard queries without data: {empty}"
