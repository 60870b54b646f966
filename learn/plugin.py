"""The pytest plugin the exercises' checks run under (`-p learn.plugin`).

* Builds the exercises' tables (`learn.models`) in the harness's template database, so each
  check gets the same PostgreSQL, Redis and per-test isolation as the kit's own suite.
* Gives each check the learner's module as the `learner` fixture: the workspace file named by
  `--learn-file N=PATH`, or, with `--learn-verify`, the exercise's start and its solution side
  by side (one pytest process for every exercise, the servers started once).
* Records every test's outcome and, for a failure, the check's own message in plain words (the
  assertion's text, or the exception the learner's code raised and the line it came from)
  instead of a traceback; `--learn-report PATH` writes them as JSON for the CLI.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import sys
from collections.abc import Generator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from sqlalchemy import create_engine

from learn.catalog import Exercise, of_directory
from learn.models import Base
from patterns.db.engine import sync_url

_RESULTS = pytest.StashKey[list[dict[str, Any]]]()
_LOADED: dict[Path, ModuleType] = {}
_MAX_LINES = 14


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("learn", "the learn exercises")
    group.addoption(
        "--learn-file",
        action="append",
        default=[],
        metavar="N=PATH",
        help="check exercise N against the file at PATH (repeatable)",
    )
    group.addoption(
        "--learn-verify",
        action="store_true",
        help="check every exercise's start and solution files instead",
    )
    group.addoption("--learn-report", metavar="PATH", help="write the outcomes as JSON")


def pytest_configure(config: pytest.Config) -> None:
    config.stash[_RESULTS] = []


@pytest.hookimpl(optionalhook=True)
def pytest_kit_setup_database(url: str) -> bool:
    """The template database gets the exercises' tables, once per run."""
    engine = create_engine(sync_url(url))
    try:
        Base.metadata.create_all(engine)
    finally:
        engine.dispose()
    return True


def _files(config: pytest.Config) -> dict[int, Path]:
    files: dict[int, Path] = {}
    for value in config.getoption("learn_file"):
        number, _, path = str(value).partition("=")
        files[int(number)] = Path(path).resolve()
    return files


def _sources(config: pytest.Config, exercise: Exercise) -> list[tuple[str, Path]]:
    if config.getoption("learn_verify"):
        return [("start", exercise.start), ("solution", exercise.solution)]
    files = _files(config)
    if exercise.number in files:
        return [("workspace", files[exercise.number])]
    return [("start", exercise.start)]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "learner" not in metafunc.fixturenames:
        return
    exercise = of_directory(metafunc.definition.path.parent)
    sources = _sources(metafunc.config, exercise)
    metafunc.parametrize(
        "learner", [path for _, path in sources], ids=[v for v, _ in sources], indirect=True
    )


def load(path: Path) -> ModuleType:
    """Import the file at `path` once per process, under a name of its own (a start and a
    solution of the same exercise coexist)."""
    path = path.resolve()
    if path in _LOADED:
        return _LOADED[path]
    name = "learner_" + hashlib.sha256(str(path).encode()).hexdigest()[:12]
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    _LOADED[path] = module
    return module


@pytest.fixture
def learner(request: pytest.FixtureRequest) -> ModuleType:
    """The learner's module (or the start/solution, when verifying)."""
    return load(Path(request.param))


def _plain(excinfo: pytest.ExceptionInfo[BaseException], learner_file: Path | None) -> str:
    """What went wrong, in the check's words: an assertion's message without pytest's
    introspection, or the exception and the line of the learner's file it came from."""
    exc = excinfo.value
    if isinstance(exc, AssertionError):
        text = str(exc).split("\nassert ", 1)[0].strip()
        message = text or "an assertion failed"
    else:
        message = f"your code raised {type(exc).__name__}: {exc}".rstrip(": ")
        if isinstance(exc, SyntaxError) and exc.lineno:
            message = f"your file does not compile: {exc.msg} (line {exc.lineno})"
        elif learner_file is not None:
            entries = [e for e in excinfo.traceback if Path(str(e.path)) == learner_file]
            if entries:
                entry = entries[-1]
                line = str(entry.statement).strip().splitlines()[0]
                message += f"\n  at line {entry.lineno + 1} of your file: {line}"
    lines = message.splitlines()
    if len(lines) > _MAX_LINES:
        lines = [*lines[:_MAX_LINES], f"… ({len(lines) - _MAX_LINES} more lines)"]
    return "\n".join(lines)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    callspec = getattr(item, "callspec", None)
    if callspec is None or "learner" not in callspec.params:
        return report
    path = Path(callspec.params["learner"]).resolve()
    if report.when == "call" or report.failed:
        message = None
        if report.failed and call.excinfo is not None:
            message = _plain(call.excinfo, path)
        exercise = of_directory(Path(str(item.path)).parent)
        variant = {exercise.start: "start", exercise.solution: "solution"}.get(path, "workspace")
        item.config.stash[_RESULTS].append(
            {
                "exercise": exercise.number,
                "variant": variant,
                "test": item.name.split("[", 1)[0],
                "when": report.when,
                "outcome": report.outcome,
                "message": message,
                "duration": report.duration,
            }
        )
    return report


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    target = session.config.getoption("learn_report")
    if target:
        Path(target).write_text(json.dumps(session.config.stash[_RESULTS], indent=1))
