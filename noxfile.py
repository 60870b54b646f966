# /// script
# requires-python = ">=3.11"
# dependencies = ["nox>=2025.2.9", "uv>=0.5"]
# ///
"""Every workflow of the kit is a nox session; `python3 noxfile.py -l` lists them.

On a machine with nothing but Python 3.11+, run this file directly (`python3 noxfile.py -s serve`):
it installs nox and uv into `.nox/_bootstrap` once and hands over to nox (nox stays off the PATH;
with nox installed yourself, `nox -s serve` is the same thing)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent
BOOTSTRAP = ROOT / ".nox" / "_bootstrap"


def _bootstrap_and_exec() -> None:
    """Run nox from a private virtualenv, creating it the first time."""
    bindir = "Scripts" if os.name == "nt" else "bin"
    python = BOOTSTRAP / bindir / ("python.exe" if os.name == "nt" else "python")
    if not python.exists():
        print("noxfile.py: installing nox and uv into .nox/_bootstrap (first run only)", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(BOOTSTRAP)], check=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "--quiet", "nox>=2025.2.9", "uv>=0.5"],
            check=True,
        )
    os.execv(str(python), [str(python), str(Path(__file__).resolve()), *sys.argv[1:]])


if __name__ == "__main__" and Path(sys.prefix).resolve() != BOOTSTRAP.resolve():
    _bootstrap_and_exec()

import nox  # noqa: E402

nox.needs_version = ">=2025.2.9"
nox.options.default_venv_backend = "uv|virtualenv"
nox.options.reuse_venv = "yes"
nox.options.sessions = ["tests"]

PYPROJECT = nox.project.load_toml(str(ROOT / "pyproject.toml"))
INSTALL_ENV = {"UV_COMPILE_BYTECODE": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1"}


def _install(session: nox.Session, *groups: str, editable: bool = True) -> None:
    """The project plus dependency groups (PEP 735), bytecode compiled."""
    deps: list[str] = []
    for group in groups:
        deps += nox.project.dependency_groups(PYPROJECT, group)
    project = ["-e", "."] if editable else ["."]
    session.install(*project, *deps, env=INSTALL_ENV)


# Bytecode written even where the shell sets PYTHONDONTWRITEBYTECODE: without it every pytest
# process (the main one and each xdist worker) compiles the kit and re-does pytest's assertion
# rewriting of every test module, about 5 s per process on the development machine.
KEEP_BYTECODE = {"PYTHONDONTWRITEBYTECODE": ""}


def _pytest(session: nox.Session, *default_args: str) -> None:
    _install(session, "test")
    args = session.posargs or list(default_args)
    session.run("python", "-m", "pytest", *args, env=KEEP_BYTECODE)


@nox.session
def serve(session: nox.Session) -> None:
    """Run the API; with no settings on the embedded SQLite + fakeredis (prints the docs URL).

    The environment has the `pitfalls` group too, so `python -m pitfalls run PF001` in it draws
    its chart."""
    _install(session, "pitfalls")
    session.run("python", "-m", "reference_app", "serve", *session.posargs)


@nox.session
def worker(session: nox.Session) -> None:
    """A Celery worker for the configured Redis (`KIT_REDIS_URL`).

    Arguments go to `python -m reference_app worker` (e.g. `-- --concurrency 4`)."""
    _install(session)
    session.run("python", "-m", "reference_app", "worker", *session.posargs)


# Work stealing: a worker that runs out of tests takes pending ones from the other, so one
# long test file does not leave a core idle at the end of the run.
PARALLEL = ("-n", "auto", "--dist", "worksteal")


@nox.session
def tests(session: nox.Session) -> None:
    """Unit and integration tests, in parallel, on real PostgreSQL and Redis (the default).

    The inner loop: every test not marked `slow` (those run in `system`)."""
    _pytest(session, "tests/unit", "tests/integration", *PARALLEL, "-m", "not slow")


@nox.session
def system(session: nox.Session) -> None:
    """The long system tests (marked `slow`): schema fuzzing, restarts, outages, the CLI and
    servers in their own processes, every pitfall's evidence. CI runs them after `tests`."""
    _pytest(session, "tests/unit", "tests/integration", *PARALLEL, "-m", "slow")


@nox.session
def unit(session: nox.Session) -> None:
    """Unit tests only: no servers needed."""
    _pytest(session, "tests/unit")


@nox.session
def integration(session: nox.Session) -> None:
    """Integration tests against real PostgreSQL and Redis (the harness picks the servers)."""
    _pytest(session, "tests/integration")


@nox.session
def bench(session: nox.Session) -> None:
    """Benchmarks on real PostgreSQL and Redis; `-- --compare` fails on a regression.

    Every run is saved in .benchmarks/ with its rounds' times. `--compare` then judges this run
    against the last saved one, each benchmark by its own spread (tests/benchmarks/compare.py):
    one summary table, exit status 1 when a benchmark is slower."""
    _install(session, "test")
    # Figures from a busy machine make a poor baseline and a false regression: say how busy.
    load1 = os.getloadavg()[0]
    session.log(f"load average {load1:.2f} on {os.cpu_count()} cores")
    if load1 > (os.cpu_count() or 1) / 2:
        session.warn("the machine is busy: timings will be slower and noisier than usual")
    args = list(session.posargs)
    compare = "--compare" in args
    args = [a for a in args if a != "--compare"]
    storage = ROOT / ".benchmarks"
    command = [
        "python", "-m", "pytest", "tests/benchmarks", "--benchmark-only", "-p", "no:cacheprovider",
        "--benchmark-autosave", "--benchmark-save-data", f"--benchmark-storage=file://{storage}",
        # Enough rounds for the comparison's statistics, after a warm-up.
        "--benchmark-min-rounds=15", "--benchmark-warmup=on",
        "--benchmark-warmup-iterations=1000",
        # A table that fits a normal window.
        "--benchmark-columns=median,iqr,rounds", "--benchmark-name=short",
    ]  # fmt: skip
    session.run(*command, *args)
    if compare:
        session.run("python", "-m", "tests.benchmarks.compare", str(storage))


@nox.session
def load(session: nox.Session) -> None:
    """The real stack under Locust for a bounded time, judged against the SLOs.

    Starts and stops everything: `python3 noxfile.py -s load -- --users 50 --duration 60s`
    (`-- --help` for the rest: `--host URL` for a deployment it did not start,
    `--master`/`--worker`, `--profile`, `--prometheus`, `--compare RESULTS_DIR`;
    docs/performance-engineering.md)."""
    _install(session, "test", "load")
    session.run("python", "-m", "loadtests.run", *session.posargs)


@nox.session(name="load-compare")
def load_compare(session: nox.Session) -> None:
    """Two load runs side by side: `python3 noxfile.py -s load-compare -- BASELINE RUN`.

    Throughput and p50/p95/p99 per SLO group with their ratios, a PNG of both runs' percentiles
    over time; exit code 1 past the threshold (`--threshold 1.25`)."""
    _install(session, "load")
    session.run("python", "-m", "loadtests.compare", *session.posargs)


_PITFALL_ID = re.compile(r"(?i)pf\d+|all")


@nox.session
def pitfalls(session: nox.Session) -> None:
    """Every pitfall's wrong and right version side by side, with measured evidence.

    On real PostgreSQL and Redis (`-- PF001 PF008` for some; `-- list`, or any other command of
    `python -m pitfalls`, runs that command). The servers: KIT_DATABASE_URL and
    KIT_REDIS_URL when both are set (a scratch schema and a key prefix are used, then removed);
    otherwise the test harness's (KIT_TEST_* URLs, testcontainers, or local binaries started for
    the run). Tables and the PF001 chart go to results/pitfalls/."""
    _install(session, "test")  # the harness's server starters live in patterns.testing
    args = list(session.posargs) or ["all"]
    if _PITFALL_ID.fullmatch(args[0]):  # `-- PF001 PF008`: run those
        args = ["run", *args]
    # `-- list`, `-- --help` and the CLI's other commands go through as they are.
    configured = os.environ.get("KIT_DATABASE_URL") and os.environ.get("KIT_REDIS_URL")
    if args[0] == "run" and not configured and "--servers" not in args:
        args += ["--servers", "harness"]
    session.run("python", "-m", "pitfalls", *args)


@nox.session
def learn(session: nox.Session) -> None:
    """Exercises that fail until the pattern is right, checked on real PostgreSQL and Redis.

    With no arguments: the next unsolved exercise, its file and what its check says is wrong.
    `-- list`, `-- check 3`, `-- hint 3`, `-- reset 3`, `-- watch`, `-- verify-solutions`
    (see docs/learn.md). The learner's files live in learn_workspace/ (git-ignored)."""
    _install(session, "test", "learn")  # the checks run through the harness in patterns.testing
    session.run("python", "-m", "learn", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff check, ruff format --check, and the import-linter layering contract."""
    _install(session, "lint")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
    session.run("lint-imports")


@nox.session
def typecheck(session: nox.Session) -> None:
    """mypy, strict on patterns and reference_app."""
    _install(session, "test", "lint", "load", "learn")
    session.run("mypy")


@nox.session
def check(session: nox.Session) -> None:
    """Find the pitfalls' shapes in source, without running it (docs/check.md).

    `nox -s check -- PATH... [--format sarif]`; with no arguments, the kit's own code (clean)."""
    _install(session)
    session.run(
        "python", "-m", "pitfalls", "check", *(session.posargs or ["patterns", "reference_app"])
    )


@nox.session
def docs(session: nox.Session) -> None:
    """The docs site in strict mode (a broken link fails); `-- serve` serves it."""
    _install(session, "docs")
    env = {"NO_MKDOCS_2_WARNING": "1"}
    if session.posargs[:1] == ["serve"]:
        session.run("mkdocs", "serve", *session.posargs[1:], env=env)
    else:
        session.run("mkdocs", "build", "--strict", *session.posargs, env=env)


@nox.session
def floor(session: nox.Session) -> None:
    """The kit's hot paths beside a bare FastAPI app, in one run (`loadtests/floor.py`):
    `nox -s floor -- --database-url URL --redis-url URL` (needs `wrk`; `-- --help`)."""
    _install(session, "test", "load")
    session.run("python", "-m", "loadtests.floor", *session.posargs)


if __name__ == "__main__":
    nox.main()
