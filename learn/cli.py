"""`python -m learn` (`nox -s learn`): the exercises, one at a time, each checked until it passes.

The learner's copies live in the workspace (`learn_workspace/`, git-ignored; `KIT_LEARN_WORKSPACE`
moves it): the starting files are copied there on first use and the kit's own files are never
edited. A check is pytest on the exercise's `check.py` against the workspace file, on real
PostgreSQL and Redis through the kit's harness; the CLI prints the first failing assertion's
message, not pytest's output (`-v` shows that too).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console

from learn.catalog import EXERCISES, Exercise, by_number
from patterns.testing import POSTGRES_URL_ENV, REDIS_URL_ENV, NoBackendError, backends

ROOT = Path(__file__).resolve().parent.parent
WORKSPACE_ENV = "KIT_LEARN_WORKSPACE"
PROGRESS_FILE = ".progress.json"
TIMEOUT_ENV = "KIT_LEARN_TIMEOUT"
TIMEOUT_S = 120  # per exercise checked: a learner's code that waits forever must not hang here

console = Console(highlight=False, soft_wrap=True)


def workspace() -> Path:
    return Path(os.environ.get(WORKSPACE_ENV) or ROOT / "learn_workspace").resolve()


def workspace_file(exercise: Exercise) -> Path:
    return workspace() / exercise.workspace_name


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def ensure_workspace() -> Path:
    """Copy every starting file the workspace lacks; never overwrite the learner's work."""
    ws = workspace()
    ws.mkdir(parents=True, exist_ok=True)
    readme = ws / "README.md"
    if not readme.exists():
        readme.write_text(
            "Your copies of the exercises: edit them here. `nox -s learn -- reset N` restores "
            "one; this directory is ignored by git.\n"
        )
    for exercise in EXERCISES:
        target = workspace_file(exercise)
        if not target.exists():
            shutil.copyfile(exercise.start, target)
    return ws


def _load_progress() -> dict[str, str]:
    path = workspace() / PROGRESS_FILE
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text())
    except ValueError:  # a hand-edited or truncated file: start the bookkeeping afresh
        return {}
    return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}


def _save_progress(progress: dict[str, str]) -> None:
    (workspace() / PROGRESS_FILE).write_text(json.dumps(progress, indent=1, sort_keys=True))


def is_solved(exercise: Exercise, progress: dict[str, str] | None = None) -> bool:
    """Solved: its check passed on the file exactly as it is now."""
    progress = _load_progress() if progress is None else progress
    path = workspace_file(exercise)
    return path.exists() and progress.get(exercise.workspace_name) == _digest(path)


def _mark(exercise: Exercise, solved: bool) -> None:
    progress = _load_progress()
    if solved:
        progress[exercise.workspace_name] = _digest(workspace_file(exercise))
    else:
        progress.pop(exercise.workspace_name, None)
    _save_progress(progress)


def solved_count() -> int:
    progress = _load_progress()
    return sum(is_solved(e, progress) for e in EXERCISES)


@dataclass
class Outcome:
    """One exercise's check on one file (workspace, start or solution)."""

    exercise: Exercise
    variant: str
    passed: int = 0
    failures: list[tuple[str, str]] = field(default_factory=list)  # (test, message)

    @property
    def ok(self) -> bool:
        return self.passed > 0 and not self.failures


@dataclass
class Run:
    outcomes: dict[tuple[int, str], Outcome]
    seconds: float
    returncode: int
    output: str
    timed_out: float | None = None
    """The time limit, when the check was stopped for reaching it."""


def _pytest(command: list[str], env: Mapping[str, str], limit: float) -> tuple[int, str, bool]:
    """Run pytest; past `limit` seconds interrupt it as Ctrl-C would, so the harness still
    stops the servers it started, and kill it only if that does not end it."""
    proc = subprocess.Popen(
        command,
        cwd=ROOT,
        env=dict(env),
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        output, _ = proc.communicate(timeout=limit)
        return proc.returncode, output, False
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGINT)
    try:
        output, _ = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        output, _ = proc.communicate()
    return proc.returncode, output, True


@contextmanager
def servers() -> Iterator[dict[str, str]]:
    """PostgreSQL and Redis kept up across several checks (`watch`, `learn` moving on), so
    each check skips starting them: the harness's own choice (environment URLs, containers,
    local binaries), handed to the checks as the harness's environment URLs. Servers given in
    the environment are used as they are."""
    if os.environ.get(POSTGRES_URL_ENV) and os.environ.get(REDIS_URL_ENV):
        yield {}
        return
    started: list[backends.Service] = []
    try:
        for kind in ("postgres", "redis"):
            started.append(backends.choose(kind)[0])
        yield {POSTGRES_URL_ENV: started[0].url, REDIS_URL_ENV: started[1].url}
    finally:
        for service in started:
            backends.stop(service)


def run_checks(
    exercises: Sequence[Exercise],
    *,
    verify: bool = False,
    verbose: bool = False,
    env: Mapping[str, str] | None = None,
) -> Run:
    """One pytest process for the given exercises (the harness starts its servers once)."""
    with tempfile.TemporaryDirectory(prefix="kit-learn-") as tmp:
        report = Path(tmp) / "report.json"
        # Only the plugins a check needs (pytest-asyncio, the kit's harness, learn's own): the
        # test environment's others (hypothesis, schemathesis, benchmark, xdist) would cost
        # more start-up time than the tests themselves. The project's addopts go with them.
        command = [
            sys.executable, "-m", "pytest", *(str(e.check) for e in exercises),
            "-p", "asyncio", "-p", "kit", "-p", "learn.plugin", "-o", "addopts=",
            f"--learn-report={report}", "-p", "no:cacheprovider", "-q", "-rN", "--no-header",
        ]  # fmt: skip
        if verify:
            command.append("--learn-verify")
        else:
            command += [f"--learn-file={e.number}={workspace_file(e)}" for e in exercises]
        limit = float(os.environ.get(TIMEOUT_ENV) or TIMEOUT_S) * len(exercises)
        started = time.perf_counter()
        returncode, output, timed_out = _pytest(
            command, {**os.environ, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1", **(env or {})}, limit
        )
        seconds = time.perf_counter() - started
        records: list[dict[str, Any]] = json.loads(report.read_text()) if report.exists() else []
    if verbose:
        console.print(output, markup=False)
    outcomes: dict[tuple[int, str], Outcome] = {}
    for record in records:
        key = (int(record["exercise"]), str(record["variant"]))
        outcome = outcomes.setdefault(key, Outcome(by_number(key[0]), key[1]))
        if record["outcome"] == "passed":
            outcome.passed += 1
        elif record["outcome"] == "failed":
            outcome.failures.append((str(record["test"]), str(record["message"])))
    return Run(outcomes, seconds, returncode, output, limit if timed_out else None)


def _problem(run: Run, exercise: Exercise, variant: str) -> str | None:
    """None when the check passed, else what to tell the learner."""
    outcome = run.outcomes.get((exercise.number, variant))
    if outcome is not None and outcome.ok:
        return None
    if outcome is not None and outcome.failures:
        return outcome.failures[0][1]
    if run.timed_out is not None:
        return (
            f"the check did not finish within {run.timed_out:.0f} s and was stopped: does your "
            "code wait forever (a lock another session holds, a loop that never ends)?"
        )
    # No test ran: pytest itself failed (a harness without servers, a broken check).
    tail = "\n".join(run.output.strip().splitlines()[-15:])
    return f"the check did not run (pytest exited with {run.returncode}):\n{tail}"


def _syntax_error(path: Path) -> str | None:
    try:
        compile(path.read_bytes(), str(path), "exec")
    except SyntaxError as exc:
        return f"your file does not compile: {exc.msg} (line {exc.lineno})"
    return None


def _relative(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _progress_line() -> str:
    return f"{solved_count()} of {len(EXERCISES)} done"


def _card(exercise: Exercise) -> None:
    console.print(
        f"\n[bold]Exercise {exercise.number}: {exercise.title}[/bold]\n"
        f"  guide section: “{exercise.section}”  ·  docs: docs/{exercise.docs}\n"
        f"  edit: [cyan]{_relative(workspace_file(exercise))}[/cyan]"
    )


def check(
    exercise: Exercise, *, verbose: bool = False, env: Mapping[str, str] | None = None
) -> bool:
    """Check the workspace file; record the result; print what the check says."""
    ensure_workspace()
    problem = _syntax_error(workspace_file(exercise))
    seconds = 0.0
    if problem is None:  # no servers started for a file that cannot even be compiled
        run = run_checks([exercise], verbose=verbose, env=env)
        problem, seconds = _problem(run, exercise, "workspace"), run.seconds
    _mark(exercise, problem is None)
    if problem is None:
        _card(exercise)
        console.print(
            f"  [green]✓ solved[/green] (check took {seconds:.1f} s). Compare with "
            f"{_relative(exercise.solution)} and read {_relative(exercise.explanation)}"
        )
    else:
        _card(exercise)
        console.print(f"  [red]✗ not yet[/red] (check took {seconds:.1f} s):")
        for line in problem.splitlines():
            console.print(f"    {line}", markup=False)
        console.print(f"  stuck? [bold]nox -s learn -- hint {exercise.number}[/bold]")
    console.print(f"  progress: {_progress_line()}")
    return problem is None


def current() -> Exercise | None:
    progress = _load_progress()
    return next((e for e in EXERCISES if not is_solved(e, progress)), None)


def cmd_next(verbose: bool) -> int:
    """Check the exercises in order until one fails; show that one."""
    ensure_workspace()
    with servers() as env:
        while (exercise := current()) is not None:
            if not check(exercise, verbose=verbose, env=env):
                return 0
    console.print(f"\n[green]All {len(EXERCISES)} exercises solved.[/green] Well done.")
    return 0


def cmd_list() -> int:
    ensure_workspace()
    progress = _load_progress()
    console.print(f"Exercises ({_progress_line()}), files in {_relative(workspace())}/")
    for e in EXERCISES:
        if is_solved(e, progress):
            status = "[green]solved     [/green]"
        elif e.workspace_name in progress:
            status = "[yellow]edited     [/yellow]"  # solved once, changed since
        else:
            status = "not yet    "
        console.print(
            f"  {e.number:>2} {status} {e.workspace_name:<32} {e.title} [dim]({e.section})[/dim]"
        )
    return 0


def cmd_hint(exercise: Exercise) -> int:
    _card(exercise)
    console.print()
    console.print(exercise.hint.read_text().rstrip(), markup=False)
    return 0


def cmd_reset(exercise: Exercise) -> int:
    ensure_workspace()
    shutil.copyfile(exercise.start, workspace_file(exercise))
    _mark(exercise, False)
    console.print(f"{_relative(workspace_file(exercise))} is back to its starting version.")
    return 0


def cmd_watch(verbose: bool) -> int:
    """Re-check the current exercise each time its file is saved; move on when it passes."""
    from watchfiles import watch

    ensure_workspace()
    with servers() as env:
        exercise = current()
        while exercise is not None and check(exercise, verbose=verbose, env=env):
            exercise = current()
        console.print(f"\nwatching {_relative(workspace())} (Ctrl-C to stop)")
        try:
            for changes in watch(workspace()):
                if exercise is None:
                    break
                target = workspace_file(exercise)
                if not any(Path(path) == target for _, path in changes):
                    continue
                while exercise is not None and check(exercise, verbose=verbose, env=env):
                    exercise = current()
                if exercise is None:
                    break
        except KeyboardInterrupt:
            return 0
    console.print(f"\n[green]All {len(EXERCISES)} exercises solved.[/green]")
    return 0


def cmd_verify(verbose: bool) -> int:
    """Every exercise: its starting file fails its check and its solution passes it."""
    run = run_checks(EXERCISES, verify=True, verbose=verbose)
    failures: list[str] = []
    console.print(f"verify-solutions: {len(EXERCISES)} exercises in {run.seconds:.1f} s")
    wrong = 0
    for e in EXERCISES:
        start_problem = _problem(run, e, "start")
        solution_problem = _problem(run, e, "solution")
        start_ok = start_problem is not None and (e.number, "start") in run.outcomes
        wrong += (not start_ok) + (solution_problem is not None)
        start = "[green]start fails[/green] " if start_ok else "[red]start PASSES[/red]"
        solution = (
            "[green]solution passes[/green]"
            if solution_problem is None
            else "[red]solution FAILS [/red]"
        )
        said = (start_problem or "").splitlines()[0] if start_ok else ""
        said = said if len(said) <= 60 else said[:59] + "…"
        console.print(f"  {e.number:>2} {e.slug:<24} {start}  {solution}  [dim]{said}[/dim]")
        if solution_problem is not None:
            failures.append(f"exercise {e.number}'s solution: {solution_problem}")
    for failure in failures:
        console.print(failure, markup=False)
    if wrong:
        if not verbose:
            console.print(run.output[-4000:], markup=False)
        console.print(f"[red]verify-solutions: {wrong} problem(s)[/red]")
        return 1
    console.print("verify-solutions: every start fails its check and every solution passes")
    return 0


def _exercise(value: str) -> Exercise:
    try:
        return by_number(int(value))
    except (ValueError, LookupError):
        raise argparse.ArgumentTypeError(
            f"{value!r}: give an exercise number from 1 to {len(EXERCISES)}"
        ) from None


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m learn",
        description="Learn the stack: exercises checked on real PostgreSQL and Redis. "
        "With no command: the next unsolved exercise.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="show pytest's output too")
    commands = parser.add_subparsers(dest="command")
    commands.add_parser("list", help="every exercise, solved or not")
    for name, text in (
        ("check", "check exercise N (exit 0 when solved)"),
        ("hint", "a hint for exercise N"),
        ("reset", "restore exercise N's starting file"),
    ):
        commands.add_parser(name, help=text).add_argument("number", type=_exercise)
    commands.add_parser("watch", help="re-check the current exercise each time it is saved")
    commands.add_parser("verify-solutions", help="CI: every start fails, every solution passes")
    args = parser.parse_args(argv)
    try:
        return _run(args)
    except NoBackendError as exc:
        console.print(f"[red]No servers for the checks:[/red] {exc}")
        return 1


def _run(args: argparse.Namespace) -> int:
    if args.command == "list":
        return cmd_list()
    if args.command == "check":
        return 0 if check(args.number, verbose=args.verbose) else 1
    if args.command == "hint":
        return cmd_hint(args.number)
    if args.command == "reset":
        return cmd_reset(args.number)
    if args.command == "watch":
        return cmd_watch(args.verbose)
    if args.command == "verify-solutions":
        return cmd_verify(args.verbose)
    return cmd_next(args.verbose)
