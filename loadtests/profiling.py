"""`--profile`: where the API's CPU goes under load, sampled by py-spy (guide: "Load Testing").

py-spy reads the stacks of a running Python process from outside, without instrumenting it, so
the profile is of the server as it runs under the load. One recorder follows the uvicorn parent
and every worker it starts (`--subprocesses`) and writes py-spy's own flame graph (SVG, open it in
a browser: click to zoom, Ctrl-F to search); a second one over the same window writes the raw
collapsed stacks, from which `top_functions` ranks functions by self time: the samples in which a
function was the one running, not one of its callers. Both sample without pausing the workers
(`--nonblocking`), so the load is measured as it would be without the profiler.

The text table is pure Python (`top_functions`), unit tested on collapsed stacks.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

RATE = 100  # samples per second per process: py-spy's default
_FRAME = re.compile(r"^(?P<function>.*?) \((?P<file>[^()]*?)(?::\d+)?\)$")
# `--subprocesses` puts each process at the root of its stacks: `process 12:"<command line>"`,
# whose command line may hold semicolons itself (`-c "from …; spawn_main(…)"`).
_PROCESS = re.compile(r'^process \d+:".*?"(?:;|$)')


class _Starter(Protocol):
    def start(
        self, name: str, argv: Sequence[str], env: dict[str, str], log: Path
    ) -> subprocess.Popen[bytes]: ...


@dataclass(frozen=True)
class FunctionTime:
    function: str  # "name (file)", as py-spy names a frame, without the line
    self_samples: int
    total_samples: int


def py_spy() -> str:
    """The py-spy executable beside this Python (the `load` dependency group), or on the PATH."""
    beside = Path(sys.executable).parent / "py-spy"
    found = str(beside) if beside.exists() else shutil.which("py-spy")
    if found is None:
        raise RuntimeError("--profile needs py-spy: pip install py-spy (it is in the load group)")
    return found


def _frame_name(frame: str) -> str:
    match = _FRAME.match(frame.strip())
    if match is None:
        return frame.strip()
    return f"{match['function']} ({match['file']})"


def top_functions(collapsed: Iterable[str]) -> tuple[list[FunctionTime], int]:
    """Functions by self time from py-spy's raw output (`frame;frame;…;leaf count` per line,
    root first); returns them, most self time first, and the number of samples. The process
    frames `--subprocesses` puts at the root are no functions: they are left out."""
    own: Counter[str] = Counter()
    total: Counter[str] = Counter()
    samples = 0
    for line in collapsed:
        stack, _, count_text = line.rstrip("\n").rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        while (process := _PROCESS.match(stack)) is not None:
            stack = stack[process.end() :]
        frames = [_frame_name(f) for f in stack.split(";") if f]
        samples += count
        if not frames:
            continue
        own[frames[-1]] += count
        for name in set(frames):
            total[name] += count
    ranked = sorted(total, key=lambda name: (-own[name], -total[name], name))
    return [FunctionTime(name, own[name], total[name]) for name in ranked], samples


def render_top(functions: Sequence[FunctionTime], samples: int, *, limit: int = 25) -> str:
    lines = [
        f"{samples} samples at {RATE}/s of the threads py-spy saw active, over every API "
        f"process (≈ {samples / RATE:.0f} thread-seconds: waiting for a core counts too)",
        "",
        f"{'self %':>7}{'total %':>9}  function (file)",
    ]
    for entry in [f for f in functions if f.self_samples][:limit]:
        lines.append(
            f"{entry.self_samples / samples:>7.1%}{entry.total_samples / samples:>9.1%}  "
            f"{entry.function}"
        )
    return "\n".join(lines) + "\n"


class Recorder:
    """Two py-spy recorders on a server process and its workers, for the length of the load."""

    def __init__(self, directory: Path, pid: int, rate: int = RATE) -> None:
        self.directory = directory
        self.pid = pid
        self.rate = rate
        self.flamegraph = directory / "flamegraph.svg"
        self.stacks = directory / "stacks.txt"
        self.top = directory / "top.txt"
        self._procs: list[subprocess.Popen[bytes]] = []

    def commands(self) -> list[list[str]]:
        common = [
            py_spy(), "record", "--pid", str(self.pid), "--subprocesses", "--nonblocking",
            "--function", "--rate", str(self.rate),
        ]  # fmt: skip
        return [
            [*common, "--format", "flamegraph", "--output", str(self.flamegraph)],
            [*common, "--format", "raw", "--output", str(self.stacks)],
        ]

    def start(self, processes: _Starter) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ)
        for argv in self.commands():
            self._procs.append(processes.start("py-spy", argv, env, self.directory / "py-spy.log"))

    def stop(self, timeout: float = 60.0) -> None:
        """Ctrl-C, as at a terminal: py-spy then writes its file and exits."""
        for proc in self._procs:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGINT)
        for proc in self._procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout)

    def report(self) -> str:
        """Write and return the table of functions by self time."""
        if not self.stacks.exists():
            text = f"py-spy wrote no stacks; see {self.directory / 'py-spy.log'}\n"
        else:
            with self.stacks.open(encoding="utf-8") as handle:
                functions, samples = top_functions(handle)
            text = render_top(functions, samples) if samples else "py-spy saw no busy CPU\n"
        self.top.write_text(text, encoding="utf-8")
        return text
