"""`supervise`: the worker is started again after it dies, with backoff, and stops when told to.

The children are small Python scripts that exit as scripted; the real worker crash (Redis going
away under a worker holding countdown messages) is in tests/integration/test_worker_restart.py.
"""

from __future__ import annotations

import itertools
import logging
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from reference_app.worker.supervisor import Backoff, supervise

FAST = Backoff(initial_s=0.001, cap_s=0.004, stable_after_s=1e9)


def failing_then_clean(tmp_path: Path, failures: int) -> list[str]:
    """A child that exits 1 on its first `failures` runs and 0 afterwards (counted in a file)."""
    counter = tmp_path / "runs"
    script = (
        "import pathlib, sys\n"
        f"p = pathlib.Path({str(counter)!r})\n"
        "n = int(p.read_text()) + 1 if p.exists() else 1\n"
        "p.write_text(str(n))\n"
        f"sys.exit(1 if n <= {failures} else 0)\n"
    )
    return [sys.executable, "-c", script]


def restart_delays(caplog: pytest.LogCaptureFixture) -> list[float]:
    delays: list[float] = []
    for record in caplog.records:
        if record.name == "reference_app.worker.supervisor":
            assert isinstance(record.args, tuple)
            delay = record.args[1]
            assert isinstance(delay, float)
            delays.append(delay)
    return delays


def test_a_failed_worker_is_started_again_with_doubling_delays_up_to_the_cap(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="reference_app.worker.supervisor"):
        assert supervise(failing_then_clean(tmp_path, 4), backoff=FAST) == 0
    assert (tmp_path / "runs").read_text() == "5"
    assert restart_delays(caplog) == [0.001, 0.002, 0.004, 0.004]


def test_a_worker_that_ran_long_enough_restarts_after_the_initial_delay_again(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    ticks = itertools.count(step=100.0)  # each run "lasts" 100 s, past stable_after_s
    backoff = Backoff(initial_s=0.001, cap_s=0.004, stable_after_s=50)
    with caplog.at_level(logging.ERROR, logger="reference_app.worker.supervisor"):
        assert (
            supervise(failing_then_clean(tmp_path, 3), backoff=backoff, clock=lambda: next(ticks))
            == 0
        )
    assert restart_delays(caplog) == [0.001, 0.001, 0.001]


def test_sigterm_is_forwarded_to_the_worker_once_and_ends_supervision(tmp_path: Path) -> None:
    """A stop request is not a crash: the child gets the signal, and its exit (even a failing
    one) is the end, not a reason to start it again."""
    child = (
        "import signal, sys\n"
        "def stop(signum, frame):\n"
        "    print('stopping on', signum, flush=True); sys.exit(3)\n"
        "signal.signal(signal.SIGTERM, stop)\n"
        "print('ready', flush=True)\n"
        "signal.pause()\n"
    )
    parent = (
        "import sys\n"
        "from reference_app.worker.supervisor import supervise\n"
        f"sys.exit(supervise([sys.executable, '-c', {child!r}]))\n"
    )
    with subprocess.Popen(
        [sys.executable, "-c", parent], stdout=subprocess.PIPE, text=True
    ) as supervisor:
        assert supervisor.stdout is not None
        assert supervisor.stdout.readline() == "ready\n"
        supervisor.send_signal(signal.SIGTERM)
        rest = supervisor.stdout.read()
        assert supervisor.wait(timeout=10) == 3
    assert rest == f"stopping on {int(signal.SIGTERM)}\n"  # one child, one signal, no restart
