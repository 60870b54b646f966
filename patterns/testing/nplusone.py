"""N+1 queries caught while the tests run (docs/pitfalls/PF001.md; guide: "Common Pitfalls and
Solutions" › "N+1 Query Problem").

Every SELECT any SQLAlchemy engine runs is counted, parameters aside, against each frame of
application code it was issued from, once per call that frame made: the same statement issued
through N separate calls (default 5) from one running function, a loop in an endpoint or a
service called once per request, is an N+1. One call that runs a statement N times itself (a
library's reflection, selectinload's batches) is not, and neither are N separate requests in one
test (N frames). The report names the SQL, the line that issued it and the function that
repeated it.

Only SELECTs count: a write per row is a bulk-operation question, not an N+1. Async engines are
followed across SQLAlchemy's greenlet bridge to the awaiting coroutine.
"""

from __future__ import annotations

import functools
import re
import sys
import sysconfig
import threading
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

import pytest
from sqlalchemy import Engine, event

DEFAULT_THRESHOLD = 5

_PLACEHOLDER = re.compile(r"\$\d+|%\(\w+\)s|%s|\?|(?<![:\w]):\w+")
_LIST = re.compile(r"\(\s*\?(?:\s*,\s*\?)*\s*\)")
_LIBRARY_ROOTS = tuple(
    {str(Path(p).resolve()) for k in ("stdlib", "platstdlib", "purelib", "platlib")
     if (p := sysconfig.get_paths().get(k))}
)  # fmt: skip
_HARNESS = str(Path(__file__).resolve().parent)


class NPlusOneError(AssertionError):
    """A test issued the same SELECT N times from one running function."""


class NPlusOneWarning(UserWarning):
    """As NPlusOneError, reported as a warning (`--n-plus-one=warn`)."""


def normalise(statement: str) -> str:
    """The statement with its parameters aside: placeholders and IN-lists of any length alike."""
    text = " ".join(statement.split())
    return _LIST.sub("(?)", _PLACEHOLDER.sub("?", text))


def is_select(normalised: str) -> bool:
    head = normalised.lstrip("(").split(" ", 1)[0].upper()
    return head in ("SELECT", "WITH")


@dataclass
class Repeat:
    """One statement repeated from one function: where, how often, and an example."""

    statement: str
    count: int
    issued_at: str  # path:line of the innermost application frame
    function: str  # the function that ran it N times, with its path:line
    chain: list[str] = field(default_factory=list)  # application frames, innermost first

    def describe(self) -> str:
        via = "\n      ← ".join(self.chain[1:4])
        lines = [
            f"N+1: the same SELECT {self.count}× in one call of {self.function}",
            f"    issued at {self.issued_at}" + (f"\n      ← {via}" if via else ""),
            f"    SQL: {self.statement}",
        ]
        return "\n".join(lines)


def default_is_application(root: Path) -> Callable[[str], bool]:
    """Code under `root` that is neither a library, the harness, nor a test module."""
    root_s = str(root.resolve())

    def check(filename: str) -> bool:
        if not filename.startswith(root_s) or filename.startswith(_LIBRARY_ROOTS):
            return False
        if filename.startswith(_HARNESS):
            return False
        name = Path(filename).name
        parts = Path(filename).parts
        return not (
            name.startswith("test_")
            or name.endswith("_test.py")
            or name == "conftest.py"
            or "tests" in parts
            or "site-packages" in parts
        )

    return check


class NPlusOneDetector:
    """Counts SELECTs per (statement, application frame) while `watching()` is open."""

    def __init__(self, threshold: int, is_application: Callable[[str], bool]) -> None:
        if threshold < 2:
            raise ValueError("the N+1 threshold must be at least 2")
        self.threshold = threshold
        self._is_app = is_application
        self._app_files: dict[str, bool] = {}
        # (sql, id of an application frame) → calls it made that ran the statement, and the
        # frame of the latest one: a call that is still that frame is the same call.
        self._calls: dict[tuple[str, int], int] = {}
        self._last_call: dict[tuple[str, int], FrameType] = {}
        self._first: dict[tuple[str, int], tuple[int, list[str], str]] = {}
        self._frames: dict[int, FrameType] = {}  # kept alive while watching: ids stay unique
        self._active = False
        self._lock = threading.Lock()
        self._installed = False

    def install(self) -> None:
        if not self._installed:
            event.listen(Engine, "before_cursor_execute", self._on_execute)
            self._installed = True

    def uninstall(self) -> None:
        if self._installed:
            event.remove(Engine, "before_cursor_execute", self._on_execute)
            self._installed = False

    @contextmanager
    def watching(self) -> Iterator[list[Repeat]]:
        """Count inside the block; the list it yields is filled with the repeats at its end."""
        found: list[Repeat] = []
        with self._lock:
            self._calls.clear()
            self._last_call.clear()
            self._first.clear()
            self._frames.clear()
            self._active = True
        try:
            yield found
        finally:
            with self._lock:
                self._active = False
                found.extend(self._repeats())
                self._calls.clear()
                self._last_call.clear()
                self._first.clear()
                self._frames.clear()

    def _application(self, filename: str) -> bool:
        known = self._app_files.get(filename)
        if known is None:
            known = self._app_files[filename] = self._is_app(filename)
        return known

    def _app_frames(self) -> list[tuple[FrameType, FrameType]]:
        """(application frame, the frame of the call it made) pairs, innermost first."""
        frames: list[tuple[FrameType, FrameType]] = []
        frame: FrameType | None = sys._getframe(2)
        callee: FrameType | None = None
        glet: Any = None
        while frame is not None:
            if callee is not None and self._application(frame.f_code.co_filename):
                frames.append((frame, callee))
            callee, frame = frame, frame.f_back
            if frame is None:
                # Async SQLAlchemy runs the DBAPI call in a greenlet; its caller is suspended
                # in the parent greenlet, awaiting it.
                glet = _greenlet_parent(glet)
                frame = getattr(glet, "gr_frame", None) if glet is not None else None
        return frames

    def _on_execute(
        self, conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool
    ) -> None:
        if not self._active:
            return
        sql = normalise(statement)
        if not is_select(sql):
            return
        frames = self._app_frames()
        if not frames:
            return
        chain: list[str] | None = None  # described once per new (statement, frame)
        with self._lock:
            if not self._active:
                return
            for depth, (frame, callee) in enumerate(frames):
                key = (sql, id(frame))
                self._frames[id(frame)] = frame
                if self._last_call.get(key) is not callee:
                    self._last_call[key] = callee
                    self._calls[key] = self._calls.get(key, 0) + 1
                if key not in self._first:
                    chain = chain or [_where(f) for f, _ in frames]
                    self._first[key] = (depth, chain, _function(frame))

    def _repeats(self) -> list[Repeat]:
        best: dict[str, tuple[int, Repeat]] = {}
        for (sql, _frame), count in self._calls.items():
            if count < self.threshold:
                continue
            depth, chain, function = self._first[(sql, _frame)]
            if sql in best and best[sql][0] <= depth:
                continue
            best[sql] = (depth, Repeat(sql, count, chain[0], function, chain))
        return [r for _, r in best.values()]


def _greenlet_parent(current: Any) -> Any:
    try:
        import greenlet
    except ImportError:  # pragma: no cover - SQLAlchemy's asyncio extra installs it
        return None
    glet = current if current is not None else greenlet.getcurrent()
    return glet.parent


@functools.lru_cache(maxsize=4096)
def _relative(filename: str) -> str:
    try:
        return str(Path(filename).resolve().relative_to(Path.cwd()))
    except ValueError:
        return filename


def _where(frame: FrameType) -> str:
    return f"{_relative(frame.f_code.co_filename)}:{frame.f_lineno} in {frame.f_code.co_name}"


def _function(frame: FrameType) -> str:
    code = frame.f_code
    return f"{code.co_qualname}() ({_relative(code.co_filename)}:{code.co_firstlineno})"


# --- the pytest side: `--n-plus-one=off|warn|error`, `@pytest.mark.allow_n_plus_one` -----------

MODES = ("off", "warn", "error")
MARKER = "allow_n_plus_one"
_DETECTOR = pytest.StashKey[NPlusOneDetector]()
_MODE = pytest.StashKey[str]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("kit", "the kit's test harness")
    group.addoption(
        "--n-plus-one",
        choices=MODES,
        default=None,
        dest="n_plus_one",
        help="N+1 detection while tests run: off, warn or error (ini: n_plus_one; default off)",
    )
    group.addoption(
        "--n-plus-one-threshold",
        type=int,
        default=None,
        dest="n_plus_one_threshold",
        metavar="N",
        help=f"repeats of one SELECT in one call that make an N+1 (default {DEFAULT_THRESHOLD})",
    )
    parser.addini("n_plus_one", "N+1 detection: off, warn or error", default="off")
    parser.addini(
        "n_plus_one_threshold", "repeats that make an N+1", default=str(DEFAULT_THRESHOLD)
    )


def configure(config: pytest.Config) -> None:
    """Called from the harness's pytest_configure: the marker, and the detector when on."""
    config.addinivalue_line(
        "markers",
        f"{MARKER}(reason): this test may repeat a SELECT N times in one call (N+1 detection "
        "is off for it); say why",
    )
    mode = config.getoption("n_plus_one", None) or str(config.getini("n_plus_one"))
    if mode not in MODES:
        raise pytest.UsageError(f"n_plus_one must be one of {', '.join(MODES)}, not {mode!r}")
    threshold = config.getoption("n_plus_one_threshold", None) or int(
        str(config.getini("n_plus_one_threshold"))
    )
    config.stash[_MODE] = mode
    if mode == "off":
        return
    try:
        detector = NPlusOneDetector(threshold, default_is_application(config.rootpath))
    except ValueError as exc:
        raise pytest.UsageError(str(exc)) from exc
    detector.install()
    config.stash[_DETECTOR] = detector


def pytest_unconfigure(config: pytest.Config) -> None:
    detector = config.stash.get(_DETECTOR, None)
    if detector is not None:
        detector.uninstall()


def report_header(config: pytest.Config) -> str:
    mode = config.stash.get(_MODE, "off")
    detector = config.stash.get(_DETECTOR, None)
    at = f", threshold {detector.threshold}" if detector else ""
    return f"kit harness: N+1 detection {mode}{at}"


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    detector = item.config.stash.get(_DETECTOR, None)
    if detector is None or item.get_closest_marker(MARKER) is not None:
        return (yield)
    with detector.watching() as found:
        result = yield
    if found:
        report = "\n".join(r.describe() for r in found)
        hint = (
            f"\nLoad the rows with the first query (selectinload/joinedload), or mark the test "
            f"@pytest.mark.{MARKER}(reason=...) (docs/pitfalls/PF001.md)."
        )
        if item.config.stash[_MODE] == "error":
            raise NPlusOneError(report + hint)
        warnings.warn(NPlusOneWarning(report), stacklevel=1)
    return result
