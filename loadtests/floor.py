"""The kit's hot paths beside the framework's floor, in one run (docs/performance.md, "Hot
paths: where a request's time goes").

    python3 noxfile.py -s floor -- --database-url postgresql://postgres@127.0.0.1:5432/kit_floor \
        --redis-url redis://127.0.0.1:6379/0 [--rounds 3 --duration 10 --connections 32]

Starts the kit (`python -m reference_app serve`, one worker, production settings) and the bare
app of `loadtests/floor_app.py` on loopback, migrates and seeds the database (created if
missing), then drives every endpoint with `wrk` (Debian: `apt-get install wrk`) for `--duration`
seconds at `--connections` clients, in `--rounds` interleaved rounds: each round runs every
endpoint once, so a machine that gets busier or quieter moves both sides of a ratio alike. It
prints, per round and as the median of the rounds:

* throughput and server CPU per request of each endpoint;
* the ratios the kit is judged by: featured, profile and `/health/live` against the bare
  `/ping`, the item by id against the bare async SQLAlchemy read, the 100-item page against the
  template stand-in (`/template/items`) and against the bare page;
* the PostgreSQL connections each kit run opened in its steady state (from its second second to
  its last): the pool's own count (`db_pool_connections_opened_total` from `/metrics`) and the
  database's (`pg_stat_database.sessions`, which counts the bare app's too when it runs).

Everything it starts is stopped at the end, and each run is bounded by `--duration`.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import psycopg
from psycopg import sql

from loadtests.profiling import RATE, py_spy, render_top, top_functions

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DB = "postgresql://postgres@127.0.0.1:5432/kit_floor"
DEFAULT_REDIS = "redis://127.0.0.1:6379/0"
SEED_USER = ("demo1@example.com", "demo-password")  # reference_app/seed.py's demo data
_RPS = re.compile(r"Requests/sec:\s+([0-9.]+)")
_NON_2XX = re.compile(r"Non-2xx or 3xx responses:\s+(\d+)")
_ERRORS = re.compile(r"Socket errors:.*")
_OPENED = re.compile(r'^db_pool_connections_opened_total\{pool="app"\} ([0-9.e+]+)$', re.M)


@dataclass(frozen=True)
class Target:
    name: str
    server: str  # "kit" or "bare"
    path: str
    auth: bool = False
    uses_db: bool = False


TARGETS = (
    Target("ping (bare)", "bare", "/ping"),
    Target("/health/live", "kit", "/health/live"),
    Target("featured (cached)", "kit", "/api/v1/items/featured"),
    Target("profile (cached)", "kit", "/api/v1/users/profile", auth=True),
    Target("item by id (bare)", "bare", "/items/{id}"),
    Target("item by id", "kit", "/api/v1/items/{id}", uses_db=True),
    Target("100 items (bare)", "bare", "/items?limit=100"),
    Target("100 items (template)", "bare", "/template/items?limit=100", auth=True),
    Target("100 items", "kit", "/api/v1/items?limit=100", uses_db=True),
)
# (what, numerator, denominator, the acceptance floor or None)
RATIOS = (
    ("featured / ping", "featured (cached)", "ping (bare)", 0.5),
    ("profile / ping", "profile (cached)", "ping (bare)", 0.35),
    ("/health/live / ping", "/health/live", "ping (bare)", 0.9),
    ("item by id / bare read", "item by id", "item by id (bare)", 0.9),
    ("100 items / template", "100 items", "100 items (template)", 3.0),
    ("100 items / bare page", "100 items", "100 items (bare)", None),
)


@dataclass
class Sample:
    rps: float
    cpu_ms: float  # server CPU per request
    opened: float | None = None  # connections the kit's pool opened during the run
    sessions: int | None = None  # new PostgreSQL sessions during the run
    bad: str = ""


@dataclass
class Results:
    samples: dict[str, list[Sample]] = field(default_factory=dict)

    def add(self, name: str, sample: Sample) -> None:
        self.samples.setdefault(name, []).append(sample)

    def rps(self, name: str, round_: int | None = None) -> float:
        values = [s.rps for s in self.samples[name]]
        return values[round_] if round_ is not None else statistics.median(values)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--database-url", default=DEFAULT_DB, help="created if missing")
    p.add_argument("--redis-url", default=DEFAULT_REDIS, help="a database it may flush")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--duration", type=int, default=10, help="seconds per endpoint per round")
    p.add_argument("--connections", type=int, default=32)
    p.add_argument("--items", type=int, default=1000, help="rows in the catalog")
    p.add_argument("--kit-port", type=int, default=8701)
    p.add_argument("--bare-port", type=int, default=8702)
    p.add_argument("--only", nargs="*", help="endpoint names to run (default: all)")
    p.add_argument("--set", action="append", default=[], metavar="KIT_X=V", help="kit setting")
    p.add_argument("--json", type=Path, help="also write the samples here")
    p.add_argument(
        "--steps", type=int, default=0, metavar="N",
        help="first time each step of a 100-item page in process, N rounds (then no load)",
    )  # fmt: skip
    p.add_argument(
        "--layers", type=int, default=0, metavar="N",
        help="only time the kit's every-request layers in process, N rounds (no servers)",
    )  # fmt: skip
    p.add_argument(
        "--profile", type=Path, metavar="DIR",
        help="py-spy each kit endpoint during round 1; stacks and top functions in DIR",
    )  # fmt: skip
    args = p.parse_args(argv)
    if not 1 <= args.duration <= 60 or not 1 <= args.rounds <= 10:
        p.error("--duration 1..60 and --rounds 1..10")
    if not 1 <= args.connections <= 256:
        p.error("--connections 1..256")
    return args


def kit_env(args: argparse.Namespace, base: Mapping[str, str]) -> dict[str, str]:
    env = {k: v for k, v in base.items() if not k.startswith("KIT_")}
    env.update(
        {
            "KIT_ENV": "prod",
            "KIT_SECRET_KEY": secrets.token_urlsafe(48),
            "KIT_DATABASE_URL": args.database_url,
            "KIT_REDIS_URL": args.redis_url,
            "KIT_LOG_JSON": "true",
            "KIT_RATE_LIMIT_LOGIN": "100000/minute",
            "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), base.get("PYTHONPATH")])),
        }
    )
    for setting in args.set:
        name, _, value = setting.partition("=")
        env[name] = value
    return env


def ensure_database(url: str) -> None:
    parts = urllib.parse.urlsplit(url)
    name = parts.path.lstrip("/")
    admin = urllib.parse.urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            return
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def sessions_so_far(conn: psycopg.Connection[tuple[object, ...]], database: str) -> int:
    """New backends of `database` since the statistics were reset (PostgreSQL 14+)."""
    conn.execute("SELECT pg_stat_clear_snapshot()")
    row = conn.execute(
        "SELECT sessions FROM pg_stat_database WHERE datname = %s", (database,)
    ).fetchone()
    return int(str(row[0])) if row and row[0] is not None else 0


def wait_ready(url: str, proc: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"floor: the server for {url} exited ({proc.returncode})")
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:  # noqa: S310 (loopback)
                if resp.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.2)  # polling a starting server
    raise SystemExit(f"floor: {url} not ready within {timeout:.0f} s")


def http(
    method: str, url: str, *, data: bytes | None = None, headers: Mapping[str, str] = {}
) -> bytes:
    req = urllib.request.Request(url, data=data, method=method, headers=dict(headers))  # noqa: S310
    with urllib.request.urlopen(req, timeout=10) as resp:  # noqa: S310 (loopback)
        body: bytes = resp.read()
        return body


@contextmanager
def server(
    argv: Sequence[str], env: Mapping[str, str], log: Path
) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as out:
        proc = subprocess.Popen(  # noqa: S603 (our own interpreter and module)
            argv, env=dict(env), cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        try:
            yield proc
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(15)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()


def server_cpu_s(proc: subprocess.Popen[bytes]) -> float:
    """CPU seconds of a server and its children (uvicorn may fork a worker)."""
    root = psutil.Process(proc.pid)
    total = 0.0
    for p in [root, *root.children(recursive=True)]:
        try:
            t = p.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += t.user + t.system
    return total


def wrk(
    url: str,
    args: argparse.Namespace,
    duration: int,
    headers: Sequence[str],
    during: Callable[[], None] | None = None,
) -> tuple[float, str]:
    """wrk's throughput and what went wrong; `during()` is called once the run has started."""
    argv = ["wrk", "-t1", f"-c{args.connections}", f"-d{duration}s", "--timeout", "5s"]
    for h in headers:
        argv += ["-H", h]
    proc = subprocess.Popen(  # noqa: S603 (wrk, on loopback)
        [*argv, url], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    if during is not None:
        during()
    out, _ = proc.communicate(timeout=duration + 30)
    match = _RPS.search(out)
    if match is None:
        raise SystemExit(f"floor: no throughput in wrk's output:\n{out}")
    bad = []
    if (non2xx := _NON_2XX.search(out)) is not None:
        bad.append(f"{non2xx.group(1)} non-2xx")
    if (errors := _ERRORS.search(out)) is not None:
        bad.append(errors.group(0))
    return float(match.group(1)), "; ".join(bad)


def _slug(target: Target) -> str:
    return re.sub(r"[^a-z0-9]+", "-", target.name.lower()).strip("-")


def start_profile(
    directory: Path, target: Target, pid: int, duration: int
) -> subprocess.Popen[bytes]:
    """py-spy on the kit's server (its worker included) for the length of one wrk run."""
    directory.mkdir(parents=True, exist_ok=True)
    argv = [
        py_spy(), "record", "--pid", str(pid), "--subprocesses", "--nonblocking", "--function",
        "--rate", str(RATE), "--duration", str(duration), "--format", "raw",
        "--output", str(directory / f"{_slug(target)}.txt"),
    ]  # fmt: skip
    return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # noqa: S603


def finish_profile(directory: Path, target: Target, spy: subprocess.Popen[bytes]) -> None:
    try:
        spy.wait(30)
    except subprocess.TimeoutExpired:
        spy.send_signal(signal.SIGINT)
        spy.wait(30)
    stacks = directory / f"{_slug(target)}.txt"
    if stacks.exists():
        with stacks.open(encoding="utf-8") as handle:
            functions, samples = top_functions(handle)
        top = render_top(functions, samples, limit=30) if samples else "no samples\n"
        (directory / f"{_slug(target)}.top.txt").write_text(top, encoding="utf-8")


def pool_opened(kit: str) -> float | None:
    match = _OPENED.search(http("GET", f"{kit}/metrics").decode())
    return float(match.group(1)) if match else None


async def _page_steps(database_url: str, rounds: int) -> dict[str, float]:
    """Median microseconds of each step of a 100-item page, in this process: the query (a
    COUNT and the rows as tuples in two statements, or both in one as the kit reads them), the
    ORM (the same rows as `Item` objects), pydantic (100 `ItemResponse`s read by attribute,
    from column rows and from ORM objects, or validated as dicts in one call as the kit does)
    and JSON (the page written)."""
    from pydantic import TypeAdapter
    from sqlalchemy import func, select

    from patterns.db import Database
    from patterns.pagination import Page, PageParams
    from reference_app.models.item import Item
    from reference_app.schemas.item import ItemResponse

    database = Database.from_url(database_url, pool_size=1, max_overflow=0)
    columns = [getattr(Item, a.key) for a in Item.__mapper__.column_attrs]
    keys = [a.key for a in Item.__mapper__.column_attrs]
    counted = select(func.count()).select_from(select(*columns).subquery()).scalar_subquery()
    one_statement = select(*columns, counted).order_by(Item.id).limit(100)
    as_list = TypeAdapter(list[ItemResponse])
    times: dict[str, list[float]] = {}

    def timed(step: str, start: float) -> float:
        now = time.perf_counter()
        times.setdefault(step, []).append((now - start) * 1e6)
        return now

    try:
        for _ in range(rounds):
            async with database.read_sessionmaker() as session:
                t = time.perf_counter()
                total = await session.scalar(select(func.count()).select_from(Item)) or 0
                t = timed("query: COUNT", t)
                rows = (await session.execute(select(*columns).order_by(Item.id).limit(100))).all()
                t = timed("query: 100 rows as tuples", t)
                both = (await session.execute(one_statement)).all()
                t = timed("query: 100 rows + total, 1 statement", t)
                objects = (await session.scalars(select(Item).order_by(Item.id).limit(100))).all()
                t = timed("query + ORM: 100 Item objects", t)
                items = [ItemResponse.model_validate(r, from_attributes=True) for r in rows]
                t = timed("pydantic: from column rows", t)
                _ = [ItemResponse.model_validate(r._mapping) for r in rows]
                t = timed("pydantic: from row mappings", t)
                _ = [ItemResponse.model_validate(o) for o in objects]
                t = timed("pydantic: from ORM objects", t)
                _ = as_list.validate_python([dict(zip(keys, r, strict=False)) for r in both])
                t = timed("pydantic: from dicts, one call", t)
                page = Page.create(items, total, PageParams(skip=0, limit=100))
                page.model_dump_json(by_alias=True)
                timed("JSON: the page, by pydantic", t)
    finally:
        await database.dispose()
    return {step: statistics.median(values) for step, values in times.items()}


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.layers:
        import asyncio

        from loadtests.floor_layers import layer_costs, print_layer_costs

        print_layer_costs(asyncio.run(layer_costs(args.layers)), args.layers)
        return 0
    if shutil.which("wrk") is None:
        raise SystemExit("floor: wrk is needed (Debian/Ubuntu: apt-get install wrk)")
    database = urllib.parse.urlsplit(args.database_url).path.lstrip("/")
    ensure_database(args.database_url)
    env = kit_env(args, os.environ)
    py = sys.executable
    for step in (["migrate"], ["seed", "--users", "5", "--items", str(args.items), "--force"]):
        subprocess.run([py, "-m", "reference_app", *step], env=env, cwd=ROOT, check=True,  # noqa: S603
                       stdout=subprocess.DEVNULL)  # fmt: skip
    if args.steps:
        import asyncio

        costs = asyncio.run(_page_steps(args.database_url, args.steps))
        print(f"a 100-item page, step by step (median of {args.steps}, in process):")
        for what, micros in costs.items():
            print(f"  {what:38} {micros:8.0f} us")
        return 0
    kit = f"http://127.0.0.1:{args.kit_port}"
    bare = f"http://127.0.0.1:{args.bare_port}"
    bare_env = {**env, "FLOOR_DATABASE_URL": args.database_url}
    logs = Path(tempfile.mkdtemp(prefix="kit-floor-"))
    targets = [t for t in TARGETS if not args.only or t.name in args.only]
    results = Results()
    with ExitStack() as stack:
        procs = {
            "kit": stack.enter_context(server(
                [py, "-m", "reference_app", "serve", "--host", "127.0.0.1",
                 "--port", str(args.kit_port), "--workers", "1"], env, logs / "kit.log")),
            "bare": stack.enter_context(server(
                [py, "-m", "uvicorn", "loadtests.floor_app:app", "--host", "127.0.0.1",
                 "--port", str(args.bare_port), "--no-access-log", "--log-level", "warning"],
                bare_env, logs / "bare.log")),
        }  # fmt: skip
        wait_ready(f"{kit}/health/live", procs["kit"])
        wait_ready(f"{bare}/ping", procs["bare"])
        form = urllib.parse.urlencode({"username": SEED_USER[0], "password": SEED_USER[1]})
        token = json.loads(http("POST", f"{kit}/api/v1/auth/login", data=form.encode(),
                                headers={"Content-Type": "application/x-www-form-urlencoded"})
                           )["access_token"]  # fmt: skip
        item_id = json.loads(http("GET", f"{kit}/api/v1/items?limit=1"))["items"][0]["id"]
        bases = {"kit": kit, "bare": bare}
        auth = [f"Authorization: Bearer {token}"]
        stats = stack.enter_context(psycopg.connect(args.database_url, autocommit=True))

        profile_round = False

        def run(target: Target, duration: int) -> Sample:
            url = bases[target.server] + target.path.replace("{id}", str(item_id))
            proc = procs[target.server]
            counts: list[tuple[float | None, int]] = []

            def steady_state() -> None:
                # Connections opened between the run's second second and its last: the steady
                # state, without the ramp-up, nor the requests wrk cuts off when it stops.
                start = time.monotonic()
                for at in (min(2.0, duration / 3), max(duration - 1.0, duration * 2 / 3)):
                    time.sleep(max(0.0, start + at - time.monotonic()))
                    counts.append((pool_opened(kit), sessions_so_far(stats, database)))

            cpu0 = server_cpu_s(proc)
            spy = None
            if profile_round and args.profile is not None and target.server == "kit":
                spy = start_profile(args.profile, target, proc.pid, duration)
            during = steady_state if target.uses_db else None
            rps, bad = wrk(url, args, duration, auth if target.auth else [], during)
            if spy is not None:
                finish_profile(args.profile, target, spy)
            cpu = server_cpu_s(proc) - cpu0
            sample = Sample(rps=rps, cpu_ms=1000 * cpu / max(1.0, rps * duration), bad=bad)
            if len(counts) == 2:
                (opened0, sessions0), (opened1, sessions1) = counts
                if opened0 is not None and opened1 is not None:
                    sample.opened = opened1 - opened0
                sample.sessions = sessions1 - sessions0
            return sample

        print(f"warm-up: every endpoint for 2 s (logs in {logs})", flush=True)
        for target in targets:
            run(target, 2)
        for round_ in range(args.rounds):
            profile_round = round_ == 0
            print(f"round {round_ + 1}/{args.rounds}", flush=True)
            for target in targets:
                sample = run(target, args.duration)
                results.add(target.name, sample)
                extra = ""
                if sample.opened is not None or sample.sessions is not None:
                    extra = f"  pool opened {sample.opened:.0f}, new PG sessions {sample.sessions}"
                flag = f"  !! {sample.bad}" if sample.bad else ""
                print(f"  {target.name:22} {sample.rps:9.0f} req/s  "
                      f"{sample.cpu_ms:6.3f} ms CPU/req{extra}{flag}", flush=True)  # fmt: skip
    report(results, args)
    shutil.rmtree(logs, ignore_errors=True)
    return 0


def report(results: Results, args: argparse.Namespace) -> None:
    print(f"\nmedian of {args.rounds} interleaved rounds, wrk -t1 -c{args.connections} "
          f"-d{args.duration}s, one uvicorn worker each, on {os.cpu_count()} cores "
          f"(load average {os.getloadavg()[0]:.1f})")  # fmt: skip
    for name, samples in results.samples.items():
        print(f"  {name:22} {statistics.median(s.rps for s in samples):9.0f} req/s  "
              f"{statistics.median(s.cpu_ms for s in samples):6.3f} ms CPU/req")  # fmt: skip
    print("\nratios (per round, then the median of the per-round ratios)")
    for what, num, den, floor in RATIOS:
        if num not in results.samples or den not in results.samples:
            continue
        per_round = [results.rps(num, r) / results.rps(den, r) for r in range(args.rounds)]
        median = statistics.median(per_round)
        verdict = "" if floor is None else ("  ok" if median >= floor else f"  BELOW {floor}")
        rounds = " ".join(f"{r:.2f}" for r in per_round)
        print(f"  {what:24} {rounds:>18}   median {median:.2f}x{verdict}")
    opened = [s.opened for ss in results.samples.values() for s in ss if s.opened is not None]
    sessions = [s.sessions for ss in results.samples.values() for s in ss if s.sessions is not None]
    print(f"\nkit runs on the database, steady state: pool opened {sum(opened):.0f} connections, "
          f"PostgreSQL counted {sum(sessions)} new sessions")  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps(
            {k: [vars(s) for s in v] for k, v in results.samples.items()}, indent=2))  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
