"""Keeping the worker running: its real exit code, and a restart after it dies (docs: "Background
work", "A worker that exits when Redis goes away").

With Redis as the broker, a worker that loses its connection while it holds unacknowledged
messages (an order's countdown message is held that way for 5 minutes) tries to put them back,
and kombu's Redis transport fails there (`AttributeError: 'NoneType' object has no attribute
'hostname'` in `_connparams`, under `restore_unacked` and `on_connection_error_after_connected`;
celery 5.7 / kombu 5.7, celery#10205, kombu#970). Celery calls that an unrecoverable error and
the worker process exits, even though the broker may be back a second later. Two things make that
survivable:

* `run_celery` returns the command's exit code. `Celery.start`/`worker_main` drop it (click's
  non-standalone mode returns it rather than raising), so the crashed worker exited 0 and a
  supervisor configured to restart on failure (systemd `Restart=on-failure`) left it down.
* `supervise` runs the worker as a child process and starts it again after a failure exit, with
  exponential backoff, until it is asked to stop (SIGTERM/SIGINT, forwarded to the child).
  On Linux the child also gets SIGTERM if the supervisor dies without forwarding anything
  (SIGKILL, the OOM killer): an orphaned worker would go on consuming beside the one a restarted
  supervisor starts.
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import FrameType

import click
from celery import Celery

logger = logging.getLogger("reference_app.worker.supervisor")


def run_celery(app: Celery, argv: Sequence[str]) -> int:
    """Run a `celery` sub-command (`["worker", ...]`) for `app`; return its exit code."""
    from celery.bin.celery import celery as command

    command.params[0].default = app  # what `Celery.start` does: the `-A` option's default
    try:
        result = command.main(args=list(argv), standalone_mode=False)
    except click.exceptions.Exit as exc:
        result = exc.exit_code
    finally:
        command.params[0].default = None
    return result if isinstance(result, int) else 0


@dataclass(frozen=True)
class Backoff:
    """Waits between restarts: `initial_s`, doubling up to `cap_s`; a child that ran for
    `stable_after_s` counts as healthy, and the next failure waits `initial_s` again."""

    initial_s: float = 1.0
    cap_s: float = 60.0
    stable_after_s: float = 60.0


_STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def _die_with_parent(parent_pid: int) -> Callable[[], None] | None:
    """A `preexec_fn` that has the child get SIGTERM when `parent_pid` (the supervisor) dies.

    Linux only (prctl PR_SET_PDEATHSIG); elsewhere `None`, and a supervisor killed without a
    chance to forward a signal still leaves its worker running. `preexec_fn` is safe here because
    the supervisor is single-threaded, and libc is looked up now, not in the forked child. The
    child restores SIGTERM's default action first, so the signal cannot land in our Python
    handler (inherited across fork) before exec, and checks its parent after prctl: if the
    supervisor died before, no signal will come, and it exits instead of starting a worker.
    prctl's result is not checked: if it is refused (a seccomp filter), the worker runs as before.
    """
    if sys.platform != "linux":
        return None
    prctl = ctypes.CDLL(None, use_errno=True).prctl
    option, sigterm = ctypes.c_int(_PR_SET_PDEATHSIG), ctypes.c_ulong(signal.SIGTERM)

    def set_death_signal() -> None:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        prctl(option, sigterm, ctypes.c_ulong(0), ctypes.c_ulong(0), ctypes.c_ulong(0))
        if os.getppid() != parent_pid:
            os._exit(1)

    return set_death_signal


def supervise(
    command: Sequence[str],
    *,
    backoff: Backoff | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> int:
    """Run `command`, restarting it whenever it exits with a failure, until told to stop.

    Returns the child's last exit code: after a clean exit (0: a warm shutdown, a remote
    `shutdown`), or after SIGTERM/SIGINT, which are forwarded to the child once and end the loop.
    A child killed by a signal we did not send (the OOM killer) is a failure and is restarted.
    The child runs in its own process group, so a Ctrl-C in a terminal reaches it once, from us,
    not twice; on Linux it gets SIGTERM if we die first (`_die_with_parent`). Call from the main
    thread (signal handlers, and the parent-death signal follows the thread that started it).
    """
    backoff = backoff or Backoff()
    die_with_us = _die_with_parent(os.getpid())
    stop = threading.Event()
    child: subprocess.Popen[bytes] | None = None

    def forward(signum: int, _frame: FrameType | None) -> None:
        stop.set()
        if child is not None and child.poll() is None:
            child.send_signal(signum)

    previous = {sig: signal.signal(sig, forward) for sig in _STOP_SIGNALS}
    try:
        delay = backoff.initial_s
        while True:
            started = clock()
            child = subprocess.Popen(  # noqa: S603 (our argv)
                list(command), process_group=0, preexec_fn=die_with_us
            )
            if stop.is_set():  # the signal came before `child` was set: forward it now
                child.send_signal(signal.SIGTERM)
            code = child.wait()
            if stop.is_set() or code == 0:
                return code
            if clock() - started >= backoff.stable_after_s:
                delay = backoff.initial_s
            logger.error("worker exited with status %s; starting it again in %.1f s", code, delay)
            if stop.wait(delay):
                return code
            delay = min(backoff.cap_s, delay * 2)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
