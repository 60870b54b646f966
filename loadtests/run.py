"""`nox -s load`: start the real stack, drive it with Locust for a bounded time, stop everything
(guide: "Load Testing").

In order: PostgreSQL and Redis from the harness's backends (`KIT_TEST_POSTGRES_URL` /
`KIT_TEST_REDIS_URL`, else testcontainers, else local binaries), a database of its own for this
run, migrations, seed data, uvicorn with N workers, a Celery worker, then Locust headless
(`--processes` for a master and workers beyond one core). Readiness is polled on
`/health/ready`, never slept for. Whatever happens (a failure, Ctrl-C), every process this module
started is stopped by its process group, the run's database is dropped and the servers it
started are stopped. The exit code is Locust's, which `loadtests.slo` sets from the thresholds.

    python -m loadtests.run --users 50 --duration 60s [--scenario mixed] [--workers 2]

Results go to `results/load/<timestamp>/`: Locust's CSV files and HTML report, the SLO summary
(`summary.txt`, its figures in `summary.json`), the server, worker and Locust logs, and the exact
commands (`run.txt`).

The perf engineer's workflows (docs/performance-engineering.md):

* `--host URL`: a deployment this run did not start; nothing is started, migrated or seeded, the
  users log in as the accounts given (`loadtests/accounts.py`).
* `--master` / `--worker --master-host H`: Locust's distributed mode, across machines.
* `--profile`: py-spy on every API worker (`loadtests/profiling.py`).
* `--prometheus`: a Prometheus scraping the API and Celery workers, charts after the run
  (`loadtests/observe.py`).
* `--compare RESULTS_DIR`: this run against a former one (`loadtests/compare.py`).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import os
import re
import resource
import secrets
import shlex
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import psutil
import psycopg
from psycopg import sql
from sqlalchemy.engine import make_url

from loadtests import accounts, observe, profiling
from loadtests import compare as compare_runs
from loadtests.accounts import Account
from loadtests.processes import stop_group
from patterns.testing import backends

ROOT = Path(__file__).resolve().parent.parent
LOCUSTFILE = ROOT / "loadtests" / "locustfile.py"
# The main scenarios must measure the endpoints, not the limiter: limits far above any load.
HIGH_LIMIT = "1000000/1"
_DURATION = re.compile(r"^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s?)?$")


@dataclass(frozen=True)
class Scenario:
    """Which Locust users run, which SLO profile judges them, and server settings of its own."""

    users: tuple[str, ...]
    description: str
    slo_profile: str = "default"
    env: Mapping[str, str] = field(default_factory=dict)
    ping: bool = False  # also serve loadtests/ping_app.py, as the baseline


SCENARIOS: dict[str, Scenario] = {
    "mixed": Scenario(
        ("APIUser", "BrowsingUser", "WriterUser"),
        "the guide's user, anonymous browsers and a manager writing, together",
    ),
    "guide": Scenario(("APIUser",), "the guide's user alone: profile ×3, order ×1"),
    "browse": Scenario(("BrowsingUser",), "anonymous catalog reads"),
    "write": Scenario(("WriterUser",), "a manager creating items, stocking them, ordering"),
    "compare": Scenario(
        ("CompareListItems", "CompareMe", "CompareItemById", "PingUser"),
        "items (100 per page), /users/me and one item beside a bare FastAPI /ping",
        ping=True,
    ),
    "ratelimit": Scenario(
        ("RateLimitProbe",),
        "logins against a tiny login limit: 429s are expected, and required",
        slo_profile="ratelimit",
        env={"KIT_RATE_LIMIT_LOGIN": "5/60"},
    ),
}


@dataclass(frozen=True)
class LoadOptions:
    users: int = 50
    duration: str = "60s"
    spawn_rate: float | None = None  # default: all users within ~5 s
    workers: int = 2  # uvicorn workers
    processes: int = 1  # Locust processes (>1: a master and N-1... see locust --processes)
    scenario: str = "mixed"
    seed_users: int = 200
    seed_items: int = 20_000
    user_rate: float = 0.0
    min_rps: float | None = None
    order_delay_s: int | None = None
    results_root: Path = ROOT / "results" / "load"
    celery: bool = True
    warmup: str | None = None  # a duration; statistics before it are dropped
    settings: tuple[tuple[str, str], ...] = ()  # KIT_* overrides for the stack, applied last
    host: str | None = None  # a deployment the run did not start: nothing started or seeded
    accounts: tuple[Account, ...] = ()  # who the users log in as on `host`
    master: bool = False  # Locust's distributed mode: this run is the master...
    expect_workers: int = 1
    master_bind_host: str = "*"
    master_port: int = 5557
    worker: bool = False  # ...or one of its workers, on this or another machine
    master_host: str | None = None
    profile: bool = False  # py-spy on every API worker
    prometheus: bool = False  # a Prometheus scraping the stack, charts after the run
    compare: Path | None = None  # a former run's results folder to hold this one against
    compare_threshold: float = compare_runs.DEFAULT_THRESHOLD

    @property
    def effective_spawn_rate(self) -> float:
        return self.spawn_rate if self.spawn_rate is not None else max(1.0, self.users / 5)


def parse_duration(text: str) -> int:
    """Locust's `-t` format (`90`, `90s`, `2m`, `1h30m`) in seconds; ValueError otherwise."""
    match = _DURATION.match(text.strip())
    if not text.strip() or match is None:
        raise ValueError(f"not a duration: {text!r} (examples: 60s, 2m, 1h30m)")
    hours, minutes, seconds = (int(g) if g else 0 for g in match.groups())
    total = hours * 3600 + minutes * 60 + seconds
    if total < 1:
        raise ValueError("the duration must be at least one second")
    return total


def _positive(kind: type[int] | type[float]) -> Callable[[str], int | float]:
    def parse(text: str) -> int | float:
        value = kind(text)
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be positive: {text}")
        return value

    return parse


def _duration(text: str) -> str:
    try:
        parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="nox -s load --",
        description="Start the real stack, run Locust headless for a bounded time, report.",
        epilog="scenarios: "
        + "; ".join(f"{name}: {s.description}" for name, s in SCENARIOS.items()),
    )
    add = parser.add_argument
    add("--users", type=_positive(int), default=50, help="simulated users (default 50)")
    # None: not given (a deployment the run did not start refuses what only its own stack takes).
    add("--duration", type=_duration, default="60s", help="run time, e.g. 60s, 5m (default 60s)")
    add("--spawn-rate", type=_positive(float), default=None, help="users started per second")
    add("--workers", type=_positive(int), default=None, help="uvicorn workers (default 2)")
    add(
        "--processes",
        type=int,
        default=1,
        help="Locust processes: 1 = one process; N > 1 = a master and N workers; -1 = one per core",
    )
    add("--scenario", choices=sorted(SCENARIOS), default="mixed")
    add("--seed-users", type=_positive(int), default=None, help="demo users (default 200)")
    add("--seed-items", type=_positive(int), default=None, help="demo items (default 20000)")
    add(
        "--user-rate",
        type=float,
        default=0.0,
        help="task runs per second per user (Poisson arrivals); default: the guide's 1-3 s wait",
    )
    add("--min-rps", type=float, default=None, help="fail below this total throughput")
    add("--order-delay", type=int, default=None, help="KIT_ORDER_PROCESSING_DELAY_S for the run")
    remote = parser.add_argument_group(
        "a deployment the run did not start (nothing is started, seeded or reset there)"
    )
    remote.add_argument("--host", default=None, help="its base URL, e.g. https://staging.example")
    remote.add_argument(
        "--account",
        action="append",
        default=[],
        metavar="EMAIL:PASSWORD",
        help="an account the users log in as (repeatable)",
    )
    remote.add_argument(
        "--manager-account", default=None, metavar="EMAIL:PASSWORD", help="for the writers"
    )
    remote.add_argument(
        "--accounts-csv", type=Path, default=None, help="accounts: columns email,password[,role]"
    )
    remote.add_argument(
        "--item-ids",
        type=_positive(int),
        default=100,
        help="items with ids 1..N exist there and may be read and ordered (default 100)",
    )
    dist = parser.add_argument_group("Locust's distributed mode (across machines)")
    dist.add_argument("--master", action="store_true", help="run the Locust master here")
    dist.add_argument(
        "--expect-workers", type=_positive(int), default=1, help="workers to wait for (default 1)"
    )
    dist.add_argument(
        "--master-bind-host", default="*", help="the master's interface (default: all)"
    )
    dist.add_argument(
        "--master-port", type=_positive(int), default=5557, help="master's port (default 5557)"
    )
    dist.add_argument(
        "--worker", action="store_true", help="run a Locust worker only (with --master-host)"
    )
    dist.add_argument("--master-host", default=None, help="the master's address, for --worker")
    look = parser.add_argument_group("where the time goes, and what the service saw")
    look.add_argument(
        "--profile",
        action="store_true",
        help="record every API worker with py-spy: flame graph (SVG) and top functions (text)",
    )
    look.add_argument(
        "--prometheus",
        action="store_true",
        help="run a Prometheus scraping the API and Celery workers; charts after the run",
    )
    look.add_argument(
        "--compare",
        type=Path,
        default=None,
        metavar="RESULTS_DIR",
        help="hold this run against a former one; a non-zero exit code past the threshold",
    )
    look.add_argument(
        "--compare-threshold",
        type=float,
        default=compare_runs.DEFAULT_THRESHOLD,
        help=f"worst allowed ratio (default {compare_runs.DEFAULT_THRESHOLD:g})",
    )
    add("--results", type=Path, default=ROOT / "results" / "load", help="results root")
    add("--no-celery", action="store_true", help="do not start a Celery worker")
    add(
        "--set",
        action="append",
        default=[],
        metavar="KIT_NAME=VALUE",
        help="a setting for every process of the stack, applied last (repeatable), "
        "e.g. --set KIT_DB_POOL_SIZE=20",
    )
    add(
        "--warmup",
        type=_duration,
        default=None,
        help="judge the steady state: drop what was measured in this first part of the run "
        "(e.g. 20s; the users' logins and the backlog they leave fall in it)",
    )
    return parser


def parse_args(argv: Sequence[str] | None = None) -> LoadOptions:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.processes == 0 or args.processes < -1:
        parser.error("--processes must be -1 or >= 1")
    if args.warmup is not None and parse_duration(args.warmup) >= parse_duration(args.duration):
        parser.error("--warmup must be shorter than --duration")
    settings = []
    for item in args.set:
        name, sep, value = item.partition("=")
        if not sep or not name.startswith("KIT_"):
            parser.error(f"--set takes KIT_NAME=VALUE, not {item!r}")
        settings.append((name, value))
    if (args.master or args.worker) and args.processes != 1:
        parser.error("--processes is Locust's mode on one machine: not with --master or --worker")
    if args.master and args.worker:
        parser.error("a run is --master or --worker, not both")
    if args.worker and not args.master_host:
        parser.error("--worker needs --master-host (the machine running --master)")
    try:  # a missing tool stops the run before it starts anything
        if args.prometheus:
            observe.prometheus_binary()
        if args.profile:
            profiling.py_spy()
    except RuntimeError as exc:
        parser.error(str(exc))
    if args.compare is not None and not (args.compare / "summary.json").is_file():
        parser.error(f"--compare: {args.compare} holds no summary.json (a results folder?)")
    given: list[Account] = []
    try:
        given += [accounts.parse_option(text) for text in args.account]
        if args.manager_account:
            given.append(accounts.parse_option(args.manager_account, accounts.MANAGER))
        if args.accounts_csv is not None:
            given += accounts.read_csv(args.accounts_csv)
        if args.host is not None:
            _check_remote(args, given)
    except accounts.AccountsError as exc:
        parser.error(str(exc))
    # A worker gets these from its master (Locust hands custom options over when it spawns).
    seed_items = args.item_ids if args.host is not None else args.seed_items or 20_000
    return LoadOptions(
        users=args.users,
        duration=args.duration,
        spawn_rate=args.spawn_rate,
        workers=args.workers or 2,
        processes=args.processes,
        scenario=args.scenario,
        seed_users=args.seed_users or 200,
        seed_items=seed_items,
        user_rate=args.user_rate,
        min_rps=args.min_rps,
        order_delay_s=args.order_delay,
        results_root=args.results,
        celery=not args.no_celery,
        warmup=args.warmup,
        settings=tuple(settings),
        host=args.host.rstrip("/") if args.host else None,
        accounts=tuple(given),
        master=args.master,
        expect_workers=args.expect_workers,
        master_bind_host=args.master_bind_host,
        master_port=args.master_port,
        worker=args.worker,
        master_host=args.master_host,
        profile=args.profile,
        prometheus=args.prometheus,
        compare=args.compare,
        compare_threshold=args.compare_threshold,
    )


# Options that only the stack this run starts takes: against `--host` they would mean seeding,
# resetting or reconfiguring a deployment the run does not own.
_STACK_ONLY = {
    "seed_users": "--seed-users",
    "seed_items": "--seed-items",
    "set": "--set",
    "order_delay": "--order-delay",
    "workers": "--workers",
    "no_celery": "--no-celery",
    "profile": "--profile",
}


class RemoteDatabaseError(RuntimeError):
    """A step that writes the database (seeding, resetting) was asked of a deployment the run
    did not start."""


def _check_remote(args: argparse.Namespace, given: Sequence[Account]) -> None:
    """What `--host` refuses, and what it needs (AccountsError says which)."""
    if not re.match(r"^https?://[^/\s]+", args.host):
        raise accounts.AccountsError(
            f"--host takes a base URL (http[s]://host[:port]), not {args.host!r}"
        )
    # Given at all, whatever the value (`--order-delay 0` is given).
    refused = [
        flag
        for dest, flag in _STACK_ONLY.items()
        if getattr(args, dest) is not None
        and getattr(args, dest) is not False
        and getattr(args, dest) != []
    ]
    if refused:
        raise accounts.AccountsError(
            f"--host drives a deployment this run did not start: it never seeds, resets or "
            f"reconfigures it, so {', '.join(refused)} cannot apply (py-spy needs the processes "
            "on this machine, for --profile)"
        )
    scenario = SCENARIOS[args.scenario]
    if scenario.env or scenario.ping:
        raise accounts.AccountsError(
            f"scenario {args.scenario!r} needs settings or servers of its own; against --host "
            f"use one of: {', '.join(n for n, s in SCENARIOS.items() if not (s.env or s.ping))}"
        )
    accounts.check(given, scenario.users, args.scenario)


# --- commands ----------------------------------------------------------------------------------


def app_env(
    options: LoadOptions, database_url: str, redis_url: str, base: Mapping[str, str]
) -> dict[str, str]:
    """The environment of every process of the stack: settings for a production-like run."""
    scenario = SCENARIOS[options.scenario]
    env = {k: v for k, v in base.items() if not k.startswith("KIT_")}
    env.update(
        {
            "KIT_ENV": "prod",
            "KIT_SECRET_KEY": secrets.token_urlsafe(48),
            "KIT_DATABASE_URL": database_url,
            "KIT_REDIS_URL": redis_url,
            "KIT_LOG_JSON": "true",
            "KIT_RATE_LIMIT_LOGIN": HIGH_LIMIT,
            "KIT_RATE_LIMIT_REGISTER": HIGH_LIMIT,
            "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), base.get("PYTHONPATH")])),
        }
    )
    if options.order_delay_s is not None:
        env["KIT_ORDER_PROCESSING_DELAY_S"] = str(options.order_delay_s)
    env.update(scenario.env)
    env.update(options.settings)
    return env


def server_command(options: LoadOptions, port: int) -> list[str]:
    return [
        sys.executable, "-m", "reference_app", "serve",
        "--host", "127.0.0.1", "--port", str(port), "--workers", str(options.workers),
    ]  # fmt: skip


def ping_command(options: LoadOptions, port: int) -> list[str]:
    """The baseline app under the settings `python -m reference_app serve` gives uvicorn
    (uvloop and httptools by `auto`, no access log)."""
    return [
        sys.executable, "-m", "uvicorn", "loadtests.ping_app:app",
        "--host", "127.0.0.1", "--port", str(port), "--workers", str(options.workers),
        "--no-access-log", "--log-level", "warning",
    ]  # fmt: skip


def worker_command() -> list[str]:
    # --no-restart: this run stops what it started; a restarting supervisor in between would
    # outlive it (its worker child runs in a process group of its own).
    return [sys.executable, "-m", "reference_app", "worker", "--no-restart"]


def locust_command(
    options: LoadOptions, host: str, results: Path, ping_host: str | None = None
) -> list[str]:
    scenario = SCENARIOS[options.scenario]
    argv = [
        sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless",
        "--host", host,
        "--users", str(options.users),
        "--spawn-rate", f"{options.effective_spawn_rate:g}",
        "--run-time", options.duration,
        "--stop-timeout", "10",
        "--csv", str(results / "locust"), "--csv-full-history",
        "--html", str(results / "report.html"),
        "--logfile", str(results / "locust.log"),
        "--only-summary",
        "--slo-profile", scenario.slo_profile,
        "--summary-file", str(results / "summary.txt"),
        "--seed-users", str(options.seed_users),
        "--seed-items", str(options.seed_items),
        "--user-rate", f"{options.user_rate:g}",
    ]  # fmt: skip
    if options.processes != 1:
        argv += ["--processes", str(options.processes)]
    if options.master:
        argv += [
            "--master", "--expect-workers", str(options.expect_workers),
            "--expect-workers-max-wait", "120",
            "--master-bind-host", options.master_bind_host,
            "--master-bind-port", str(options.master_port),
        ]  # fmt: skip
    if options.min_rps is not None:
        argv += ["--min-rps", f"{options.min_rps:g}"]
    if options.warmup is not None:
        argv += ["--warmup", str(parse_duration(options.warmup))]
    if ping_host:
        argv += ["--ping-host", ping_host]
    return [*argv, *scenario.users]


def locust_worker_command(options: LoadOptions, results: Path) -> list[str]:
    """A Locust worker for `--master-host`: the master hands it the host, the users to run and
    the kit's options when it spawns; the pacing is set at start, from this command."""
    assert options.master_host is not None
    return [
        sys.executable, "-m", "locust", "-f", str(LOCUSTFILE),
        "--worker", "--master-host", options.master_host,
        "--master-port", str(options.master_port),
        "--logfile", str(results / "locust.log"),
        "--user-rate", f"{options.user_rate:g}",
        *SCENARIOS[options.scenario].users,
    ]  # fmt: skip


def seed_command(options: LoadOptions) -> list[str]:
    """The seed step of the run's own stack; RemoteDatabaseError against `--host`, whatever
    the caller: the run never writes a database it did not create."""
    if options.host is not None:
        raise RemoteDatabaseError(f"refusing to seed {options.host}: the run did not start it")
    # --force: the run's server is in prod mode, and the load logs in as the demo users on a
    # database this run made and drops.
    return [
        sys.executable, "-m", "reference_app", "seed", "--force",
        "--users", str(options.seed_users), "--items", str(options.seed_items),
    ]  # fmt: skip


def results_dir(root: Path, now: dt.datetime | None = None) -> Path:
    """`<root>/<UTC timestamp>`, created; a second run in the same second gets a suffix."""
    stamp = (now or dt.datetime.now(dt.UTC)).strftime("%Y%m%dT%H%M%SZ")
    path = root / stamp
    n = 1
    while path.exists():
        n += 1
        path = root / f"{stamp}-{n}"
    path.mkdir(parents=True)
    return path


# --- processes -----------------------------------------------------------------------------------


class Processes:
    """Children started in process groups of their own, stopped group by group, newest first:
    uvicorn's and Celery's worker processes go with their parents."""

    def __init__(self) -> None:
        self._started: list[tuple[str, subprocess.Popen[bytes], IO[bytes]]] = []

    def start(
        self, name: str, argv: Sequence[str], env: Mapping[str, str], log: Path
    ) -> subprocess.Popen[bytes]:
        out = log.open("ab")
        try:
            proc = subprocess.Popen(
                list(argv),
                env=dict(env),
                cwd=ROOT,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        except BaseException:
            out.close()
            raise
        self._started.append((name, proc, out))
        return proc

    def check_alive(self) -> None:
        """Raise if a child has exited: a server that died will never become ready."""
        for name, proc, out in self._started:
            if proc.poll() is not None:
                raise RuntimeError(
                    f"{name} exited with code {proc.returncode}; see {Path(out.name).name}"
                )

    def stop_all(self, timeout: float = 15.0) -> None:
        for name, proc, out in reversed(self._started):
            try:
                stop_group(proc, timeout)
            except Exception as exc:  # keep stopping the others
                print(f"load: could not stop {name}: {exc}", file=sys.stderr)
            finally:
                out.close()
        self._started.clear()


def wait_ready(
    url: str,
    *,
    timeout: float,
    check: Callable[[], None] = lambda: None,
    interval: float = 0.2,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    fetch: Callable[[str], int] | None = None,
) -> None:
    """Poll `url` until it answers 200; `check` raises when waiting is pointless (a child died).
    TimeoutError after `timeout` seconds, naming the last answer."""
    fetch = fetch or _status_of
    deadline = clock() + timeout
    last = "no answer"
    while True:
        check()
        try:
            status = fetch(url)
            if status == 200:
                return
            last = f"HTTP {status}"
        except OSError as exc:
            last = type(exc).__name__
        if clock() >= deadline:
            raise TimeoutError(f"{url} not ready after {timeout:.0f} s (last: {last})")
        sleep(interval)


def _status_of(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 (our own http URL)
            status: int = response.status
            return status
    except urllib.error.HTTPError as exc:
        return exc.code


# --- where the CPU went ------------------------------------------------------------------------


def _proc_stats() -> dict[int, tuple[int, int, float]]:
    """pid → (parent pid, session, CPU seconds with its reaped children) for every process."""
    found: dict[int, tuple[int, int, float]] = {}
    for proc in psutil.process_iter(["ppid", "cpu_times"]):
        times = proc.info["cpu_times"]
        try:
            session = os.getsid(proc.pid)
        except OSError:  # gone meanwhile
            continue
        if times is None:  # not ours to read
            continue
        cpu = times.user + times.system + times.children_user + times.children_system
        found[proc.pid] = (proc.info["ppid"], session, cpu)
    return found


def _machine_busy_s() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot."""
    times = psutil.cpu_times()
    total = sum(times)
    idle = times.idle + getattr(times, "iowait", 0.0)
    return total - idle, total


@dataclass
class CpuMeter:
    """CPU seconds used during the load by each part of the stack (its process sessions, plus a
    PostgreSQL postmaster's children) against the whole machine's: what the rest is, is other
    work on the machine, which a figure taken on a shared machine must be read against."""

    sessions: dict[str, int] = field(default_factory=dict)  # part → session id (its leader's pid)
    trees: dict[str, int] = field(default_factory=dict)  # part → root pid, counted with children
    _start: dict[str, float] = field(default_factory=dict)
    _machine: tuple[float, float] = (0.0, 0.0)
    _children: float = 0.0
    _stop: threading.Event = field(default_factory=threading.Event)
    _timeline: threading.Thread | None = None

    def _usage(self, extra: Mapping[str, int] | None = None) -> dict[str, float]:
        procs = _proc_stats()
        sessions = {**self.sessions, **(extra or {})}
        usage = dict.fromkeys([*sessions, *self.trees], 0.0)
        by_session = {sid: part for part, sid in sessions.items()}
        for pid, (ppid, sid, cpu) in procs.items():
            if sid in by_session:
                usage[by_session[sid]] += cpu
            for part, root in self.trees.items():
                if root in (pid, ppid):
                    usage[part] += cpu
        return usage

    @staticmethod
    def _reaped_children_s() -> float:
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        return usage.ru_utime + usage.ru_stime

    def start(self) -> None:
        self._start = self._usage()
        self._machine = _machine_busy_s()
        self._children = self._reaped_children_s()

    def start_timeline(self, path: Path, locust_session: int, interval: float = 1.0) -> None:
        """Write the cores used each second, by part and by the rest of the machine, to a CSV:
        a latency spike that lines up with `other` is the machine's, not the app's."""
        extra = {"locust": locust_session}

        def sample() -> None:
            before, (busy_before, _) = self._usage(extra), _machine_busy_s()
            with path.open("w", encoding="utf-8") as out:
                out.write(",".join(["timestamp", *before, "other", "machine"]) + "\n")
                while not self._stop.wait(interval):
                    now, (busy, _) = self._usage(extra), _machine_busy_s()
                    # A process that exited takes its CPU with it: never count less than 0.
                    used = {k: max(0.0, now[k] - before.get(k, 0.0)) / interval for k in now}
                    machine = (busy - busy_before) / interval
                    other = max(0.0, machine - sum(used.values()))
                    row = [*used.values(), other, machine]
                    # Unix seconds, as in Locust's stats history, so the two files line up.
                    out.write(f"{time.time():.0f}," + ",".join(f"{v:.2f}" for v in row) + "\n")
                    out.flush()
                    before, busy_before = now, busy

        self._timeline = threading.Thread(target=sample, name="cpu-timeline", daemon=True)
        self._timeline.start()

    def stop_timeline(self) -> None:
        self._stop.set()
        if self._timeline is not None:
            self._timeline.join(5)

    def report(self) -> str:
        """Call after Locust has exited and been waited for: it is counted as this process's
        reaped children (its own processes included), the others as they run."""
        end = self._usage()
        end["locust"] = self._reaped_children_s() - self._children
        busy, total = _machine_busy_s()
        wall = (total - self._machine[1]) / (os.cpu_count() or 1)
        machine = busy - self._machine[0]
        lines = [f"{'part':<12}{'CPU s':>9}{'cores':>8}"]
        ours = 0.0
        for part in end:
            used = max(0.0, end[part] - self._start.get(part, 0.0))
            ours += used
            lines.append(f"{part:<12}{used:>9.1f}{used / wall if wall else 0:>8.2f}")
        other = max(0.0, machine - ours)
        lines.append(f"{'other':<12}{other:>9.1f}{other / wall if wall else 0:>8.2f}")
        lines.append(
            f"{'machine':<12}{machine:>9.1f}{machine / wall if wall else 0:>8.2f}"
            f"   of {os.cpu_count()} cores over {wall:.0f} s; load average before/after in run.txt"
        )
        return "\n".join(lines) + "\n"


def _postmaster_pid(service: backends.Service) -> int | None:
    if service.backend != "local":
        return None
    try:
        return int((Path(service.stop_info["data"]) / "postmaster.pid").read_text().split()[0])
    except (OSError, ValueError, KeyError, IndexError):
        return None


# --- servers and the run's database --------------------------------------------------------------


@contextlib.contextmanager
def stack_services(name: str) -> Iterator[tuple[str, str, list[backends.Service]]]:
    """PostgreSQL and Redis from the harness's backends and a database `name` on that server;
    yields (database URL, Redis URL, the two services). Dropped and stopped on the way out."""
    started: list[backends.Service] = []
    created = False
    pg_url = ""
    try:
        pg, _ = backends.choose("postgres")
        started.append(pg)
        rd, _ = backends.choose("redis")
        started.append(rd)
        pg_url = pg.url
        with psycopg.connect(pg_url, autocommit=True, connect_timeout=10) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            row = conn.execute("SHOW server_version").fetchone()
            pg.detail += f"; PostgreSQL {row[0] if row else 'unknown'}"
        created = True
        database_url = make_url(pg_url).set(database=name).render_as_string(hide_password=False)
        yield database_url, rd.url, [pg, rd]
    finally:
        if created:
            with (
                contextlib.suppress(psycopg.Error),
                psycopg.connect(pg_url, autocommit=True, connect_timeout=10) as conn,
            ):
                conn.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
                )
        for service in reversed(started):
            backends.stop(service)  # a server from the environment is left alone


def _record(results: Path, line: str) -> None:
    with (results / "run.txt").open("a", encoding="utf-8") as record:
        record.write(line + "\n")


VERSIONED = (
    "fastapi", "starlette", "uvicorn", "uvloop", "httptools", "sqlalchemy", "asyncpg", "redis",
    "celery", "pydantic", "structlog", "locust",
)  # fmt: skip


def describe_machine() -> list[str]:
    """What a figure depends on: the machine, Python and the stack's package versions."""
    from importlib.metadata import PackageNotFoundError, version

    def known(name: str) -> str:
        try:
            return version(name)
        except PackageNotFoundError:
            return "not installed"

    uname = os.uname()
    return [
        f"machine: {os.cpu_count()} cores, {uname.sysname} {uname.release} {uname.machine}",
        f"python: {sys.version.split()[0]}",
        "packages: " + ", ".join(f"{name} {known(name)}" for name in VERSIONED),
    ]


def _loadavg() -> str:
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


def _step(results: Path, what: str, argv: Sequence[str]) -> None:
    print(f"load: {what}", flush=True)
    _record(results, f"{what}: {shlex.join(argv)}")


def _run_step(results: Path, what: str, argv: Sequence[str], env: Mapping[str, str]) -> None:
    _step(results, what, argv)
    with (results / "setup.log").open("ab") as log:
        done = subprocess.run(
            list(argv), env=dict(env), cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, check=False
        )
    if done.returncode != 0:
        raise RuntimeError(f"{what} failed (exit {done.returncode}); see {results / 'setup.log'}")


def _run_local(options: LoadOptions, results: Path, processes: Processes) -> int:
    """The whole stack on this machine, on a database made for the run and dropped after it."""
    scenario = SCENARIOS[options.scenario]
    db_name = f"kit_load_{results.name.replace('-', '_').lower()}"
    with stack_services(db_name) as (database_url, redis_url, services):
        # Everything that uses the servers stops before they do (a Celery worker whose Redis
        # went away first ends its log on a connection error).
        try:
            meter = CpuMeter()
            for service in services:
                print(f"load: using {service.describe()}", flush=True)
                _record(results, service.describe())
            pg, rd = services
            for line in describe_machine():
                _record(results, line)
            if (postmaster := _postmaster_pid(pg)) is not None:
                meter.trees["postgres"] = postmaster
            if rd.backend == "local":
                meter.sessions["redis"] = int(rd.stop_info["pid"])
            env = app_env(options, database_url, redis_url, os.environ)
            env["PROMETHEUS_MULTIPROC_DIR"] = str(results / "metrics" / "api")
            _run_step(results, "migrate", [sys.executable, "-m", "reference_app", "migrate"], env)
            _run_step(results, "seed", seed_command(options), env)

            port = backends.free_port()
            host = f"http://127.0.0.1:{port}"
            argv = server_command(options, port)
            _step(results, f"serve on {host} with {options.workers} workers", argv)
            server = processes.start("server", argv, env, results / "server.log")
            meter.sessions["server"] = server.pid
            targets = {"api": [f"127.0.0.1:{port}"]}
            if options.celery:
                worker_env = {
                    **env,
                    "PROMETHEUS_MULTIPROC_DIR": str(results / "metrics" / "worker"),
                }
                _step(results, "celery worker", worker_command())
                worker = processes.start(
                    "worker", worker_command(), worker_env, results / "worker.log"
                )
                meter.sessions["worker"] = worker.pid
                if options.prometheus:
                    metrics_port = backends.free_port()
                    argv = observe.worker_exporter_command(
                        results / "metrics" / "worker", metrics_port
                    )
                    _step(results, "the Celery worker's metrics", argv)
                    processes.start("worker-metrics", argv, worker_env, results / "worker.log")
                    targets["worker"] = [f"127.0.0.1:{metrics_port}"]
            ping_host = None
            if scenario.ping:
                ping_port = backends.free_port()
                ping_host = f"http://127.0.0.1:{ping_port}"
                argv = ping_command(options, ping_port)
                _step(results, f"ping baseline on {ping_host}", argv)
                meter.sessions["ping"] = processes.start(
                    "ping", argv, env, results / "ping.log"
                ).pid
            wait_ready(f"{host}/health/ready", timeout=90, check=processes.check_alive)
            if ping_host:
                wait_ready(f"{ping_host}/ping", timeout=60, check=processes.check_alive)
            code = _load(
                options, results, processes, host, env,
                meter=meter, server=server, targets=targets, ping_host=ping_host,
            )  # fmt: skip
        finally:
            processes.stop_all()
    return code


def _run_remote(options: LoadOptions, results: Path, processes: Processes) -> int:
    """A deployment the run did not start: Locust (and Prometheus, when asked) only."""
    assert options.host is not None
    for line in describe_machine():
        _record(results, line)
    _record(results, f"target: {options.host} (not started, seeded or reset by this run)")
    env = {k: v for k, v in os.environ.items() if not k.startswith("KIT_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    wait_ready(f"{options.host}/health/ready", timeout=30)
    netloc = options.host.split("://", 1)[1].split("/", 1)[0]
    return _load(options, results, processes, options.host, env, targets={"api": [netloc]})


def _load(
    options: LoadOptions,
    results: Path,
    processes: Processes,
    host: str,
    env: Mapping[str, str],
    *,
    meter: CpuMeter | None = None,
    server: subprocess.Popen[bytes] | None = None,
    targets: Mapping[str, Sequence[str]] | None = None,
    ping_host: str | None = None,
) -> int:
    """Locust against `host`, with the profiler and Prometheus around it when asked."""
    locust_env = dict(env)
    if options.accounts:
        locust_env[accounts.ENV] = accounts.to_env(options.accounts)
    prometheus = None
    if options.prometheus:
        prometheus = observe.Prometheus(results / "prometheus", targets or {}, host)
        _step(results, "prometheus", prometheus.command())
        prometheus.start(processes)
    recorder = None
    if options.profile and server is not None:
        recorder = profiling.Recorder(results / "profile", server.pid)
    argv = locust_command(options, host, results, ping_host)
    _step(results, "locust", argv)
    _record(results, f"load average before: {_loadavg()}")
    timeout = parse_duration(options.duration) + 120 + (180 if options.master else 0)
    # Locust in a session of its own too, so its CPU is counted apart from this process;
    # Ctrl-C is passed on to it below, so it still writes its reports.
    if meter is not None:
        meter.start()
    started = time.time()
    locust = processes.start("locust", argv, locust_env, results / "locust.out")
    if meter is not None:
        meter.start_timeline(results / "cpu_timeline.csv", locust.pid)
    if recorder is not None:
        for recording in recorder.commands():
            _step(results, "py-spy", recording)
        recorder.start(processes)
    try:
        code = locust.wait(timeout)
    except KeyboardInterrupt:
        os.killpg(locust.pid, signal.SIGINT)
        locust.wait(30)
        raise
    finally:
        if meter is not None:
            meter.stop_timeline()
        if recorder is not None:
            recorder.stop()
    ended = time.time()
    _record(results, f"load average after: {_loadavg()}")
    if meter is not None:
        cpu = meter.report()
        (results / "cpu.txt").write_text(cpu)
        print(f"load: CPU during the load\n{cpu}", end="")
    if recorder is not None:
        top = recorder.report()
        print(f"load: profile {recorder.directory}\n{top}", end="")
    if prometheus is not None:
        charts = prometheus.after_run(started, ended)
        print(f"load: Prometheus charts {', '.join(str(c) for c in charts)}")
    summary_file = results / "summary.txt"
    if summary_file.exists():
        print(summary_file.read_text(), end="")
    return code


def _run_worker(options: LoadOptions) -> int:
    """A Locust worker only: the master (`--master`, on this or another machine) drives it."""
    results = results_dir(options.results_root)
    processes = Processes()
    env = {k: v for k, v in os.environ.items() if not k.startswith("KIT_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    if options.accounts:
        env[accounts.ENV] = accounts.to_env(options.accounts)
    argv = locust_worker_command(options, results)
    _step(results, f"locust worker for {options.master_host}:{options.master_port}", argv)
    try:
        worker = processes.start("locust worker", argv, env, results / "locust.out")
        # The master ends the run; a worker whose master never comes gives up after a bound.
        code = worker.wait(parse_duration(options.duration) + 300)
    except KeyboardInterrupt:
        code = 130
    except subprocess.TimeoutExpired:
        print("load: the master did not end the run in time", file=sys.stderr)
        code = 2
    finally:
        processes.stop_all()
    print(f"load: worker log {results / 'locust.log'}; exit code {code}")
    return code


def run(options: LoadOptions) -> int:
    if options.worker:
        return _run_worker(options)
    results = results_dir(options.results_root)
    scenario = SCENARIOS[options.scenario]
    processes = Processes()
    target = options.host or "the stack this run starts"
    print(
        f"load: scenario {options.scenario!r} ({scenario.description}) on {target}; "
        f"results in {results}"
    )
    try:
        if options.host is not None:
            code = _run_remote(options, results, processes)
        else:
            code = _run_local(options, results, processes)
    except KeyboardInterrupt:
        print("\nload: interrupted; stopping everything this run started", file=sys.stderr)
        code = 130
    except (RuntimeError, TimeoutError, subprocess.TimeoutExpired) as exc:
        print(f"load: {exc}", file=sys.stderr)
        code = 2
    finally:
        processes.stop_all()
    report = results / "report.html"
    print(f"load: report {report if report.exists() else '(none written)'}")
    summary = results / "summary.txt"
    if summary.exists():
        print(f"load: summary {summary}")
    if options.compare is not None and (results / "summary.json").exists():
        worse = compare_runs.main(
            [str(options.compare), str(results), "--threshold", f"{options.compare_threshold:g}"]
        )
        code = code or worse
    print(f"load: exit code {code}")
    return code


def main(argv: Sequence[str] | None = None) -> int:
    return run(parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
