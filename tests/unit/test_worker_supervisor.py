"""`supervise`: the worker is started again after it dies, with backoff, and stops when told to.

The children are small Python scripts that exit as scripted; the real worker crash (Redis going
away under a worker holding countdown messages) is in tests/integration/test_worker_restart.py.
"""

from __future__ import annotations

import itertools
import logging
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from patterns.testing import wait_until
from reference_app.worker.supervisor import Backoff, _die_with_parent, supervise

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


def _gone(pid: int) -> bool:
    """No such process, or a zombie nobody has reaped yet (an orphan's new parent may not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] == "Z"


@pytest.mark.skipif(sys.platform != "linux", reason="PR_SET_PDEATHSIG is Linux-only")
def test_a_worker_whose_supervisor_is_killed_gets_sigterm_instead_of_running_on(
    tmp_path: Path,
) -> None:
    """SIGKILL leaves the supervisor no chance to forward anything; before the death signal the
    worker ran on as an orphan, and a restarted supervisor made it two workers."""
    child = (
        "import os, pathlib, signal, sys, time\n"
        "d = pathlib.Path(sys.argv[1])\n"
        "def stop(signum, frame):\n"
        "    (d / 'signal').write_text(str(signum)); sys.exit(0)\n"
        "signal.signal(signal.SIGTERM, stop)\n"
        "(d / 'pid.tmp').write_text(str(os.getpid())); (d / 'pid.tmp').rename(d / 'pid')\n"
        "time.sleep(120)\n"
    )
    parent = (
        "import sys\n"
        "from reference_app.worker.supervisor import supervise\n"
        f"sys.exit(supervise([sys.executable, '-c', {child!r}, {str(tmp_path)!r}]))\n"
    )
    pid_file = tmp_path / "pid"
    with subprocess.Popen([sys.executable, "-c", parent]) as supervisor:
        try:
            wait_until(pid_file.exists, "the supervisor to start its child", interval=0.01)
        finally:
            supervisor.kill()
    worker = int(pid_file.read_text())
    try:
        wait_until(lambda: _gone(worker), "the worker to end with its supervisor", interval=0.01)
        assert (tmp_path / "signal").read_text() == str(int(signal.SIGTERM))
    finally:
        if not _gone(worker):
            os.kill(worker, signal.SIGKILL)


@pytest.mark.skipif(sys.platform != "linux", reason="PR_SET_PDEATHSIG is Linux-only")
def test_a_child_whose_supervisor_died_before_it_asked_for_the_signal_does_not_start() -> None:
    """The race: a parent that is already gone sends no death signal, so the child checks that
    its parent is still the supervisor and exits before exec. Here the expected parent is
    another process, which is what the child sees once the supervisor is gone."""
    hook = _die_with_parent(os.getppid())
    assert hook is not None
    ran = subprocess.run(
        [sys.executable, "-c", "print('started')"],
        preexec_fn=hook,
        capture_output=True,
        text=True,
        check=False,
    )
    assert (ran.returncode, ran.stdout) == (1, "")
