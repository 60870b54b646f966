# /// script
# requires-python = ">=3.11"
# dependencies = ["nox>=2025.2.9", "uv>=0.5"]
# ///
"""Every workflow of the kit is a nox session; `nox -l` lists them.

On a machine with nothing but Python 3.11+, run this file directly (`python3 noxfile.py -s serve`):
it installs nox and uv into `.nox/_bootstrap` once and hands over to nox. With nox installed,
`nox -s serve` is the same thing.
"""

from __future__ import annotations

import os
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


def _pytest(session: nox.Session, *default_args: str) -> None:
    _install(session, "test")
    args = session.posargs or list(default_args)
    session.run("python", "-m", "pytest", *args)


@nox.session
def serve(session: nox.Session) -> None:
    """Run the API; with no settings on the embedded SQLite + fakeredis (prints the docs URL)."""
    _install(session)
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


# `nox -s bench -- --compare` fails when a benchmark's median is more than this much slower
# than in the last saved run. The median, because other work on a shared 2-core machine shows
# up as outliers that move the mean; 25 %, because run-to-run jitter of the medians here stays
# within about ±10 % while the regressions worth stopping for (a lost index, an N+1, a
# serialisation detour) cost 2× or more. See docs/performance.md.
BENCH_REGRESSION = "median:25%"


@nox.session
def bench(session: nox.Session) -> None:
    """Benchmarks on real PostgreSQL and Redis; `-- --compare` fails on a regression.

    Runs are saved in .benchmarks/; `--compare` compares with the last saved run and fails past
    the regression threshold (BENCH_REGRESSION)."""
    _install(session, "test")
    # Figures from a busy machine make a poor baseline and a false regression: say how busy.
    load1 = os.getloadavg()[0]
    session.log(f"load average {load1:.2f} on {os.cpu_count()} cores")
    if load1 > (os.cpu_count() or 1) / 2:
        session.warn("the machine is busy: timings will be slower and noisier than usual")
    args = list(session.posargs)
    compare = "--compare" in args
    args = [a for a in args if a != "--compare"]
    command = [
        "python", "-m", "pytest", "tests/benchmarks", "--benchmark-only",
        "--benchmark-autosave", f"--benchmark-storage=file://{ROOT / '.benchmarks'}",
        "--benchmark-columns=min,median,mean,stddev,ops,rounds", "-p", "no:cacheprovider",
    ]  # fmt: skip
    if compare:
        command += ["--benchmark-compare", f"--benchmark-compare-fail={BENCH_REGRESSION}"]
    session.run(*command, *args)


@nox.session
def load(session: nox.Session) -> None:
    """The real stack under Locust for a bounded time, judged against the SLOs.

    Starts and stops everything: `nox -s load -- --users 50 --duration 60s` (`-- --help` for
    the rest: `--host URL` for a deployment it did not start, `--master`/`--worker`, `--profile`,
    `--prometheus`, `--compare RESULTS_DIR`; docs/performance-engineering.md)."""
    _install(session, "test", "load")
    session.run("python", "-m", "loadtests.run", *session.posargs)


@nox.session(name="load-compare")
def load_compare(session: nox.Session) -> None:
    """Two load runs side by side: `nox -s load-compare -- BASELINE_DIR RUN_DIR`.

    Throughput and p50/p95/p99 per SLO group with their ratios, a PNG of both runs' percentiles
    over time; exit code 1 past the threshold (`--threshold 1.25`)."""
    _install(session, "load")
    session.run("python", "-m", "loadtests.compare", *session.posargs)


@nox.session
def pitfalls(session: nox.Session) -> None:
    """Every pitfall's wrong and right version side by side, with measured evidence.

    On real PostgreSQL and Redis (`-- PF001 PF008` for some). The servers: KIT_DATABASE_URL and
    KIT_REDIS_URL when both are set (a scratch schema and a key prefix are used, then removed);
    otherwise the test harness's (KIT_TEST_* URLs, testcontainers, or local binaries started for
    the run). Tables and the PF001 chart go to results/pitfalls/."""
    _install(session, "test")  # the harness's server starters live in patterns.testing
    configured = os.environ.get("KIT_DATABASE_URL") and os.environ.get("KIT_REDIS_URL")
    servers = [] if configured else ["--servers", "harness"]
    session.run("python", "-m", "pitfalls", "run", *(session.posargs or ["all"]), *servers)


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
    _install(session, "test", "lint", "load")
    session.run("mypy")


@nox.session
def docs(session: nox.Session) -> None:
    """The docs site in strict mode (a broken link fails); `nox -s docs -- serve` serves it."""
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
