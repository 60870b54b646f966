"""Stopping a process the load tools started in a session of its own, with all it forked.

A server started with `start_new_session=True` leads a process group; uvicorn's and Celery's
workers are in it too, and may outlive the leader. Stopping the group, not only the leader, is
what frees the ports for the next run.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time

import psutil

_GONE = (psutil.STATUS_ZOMBIE, psutil.STATUS_DEAD)


def stop_group(proc: subprocess.Popen[bytes], timeout: float) -> None:
    """SIGTERM to the child's process group, SIGKILL to what is left of it in time; returns
    once no live process of the group remains (so its ports are free)."""
    try:
        pgid = os.getpgid(proc.pid)
    except ProcessLookupError:
        pgid = None
    if proc.poll() is None and pgid is not None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout)
    if pgid is None:
        return
    # The leader may have exited before its children (uvicorn's workers): sweep the group.
    deadline = time.monotonic() + timeout
    while _live_members(pgid):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGKILL)
        if time.monotonic() > deadline:
            raise RuntimeError(f"process group {pgid} survived SIGKILL")
        time.sleep(0.05)
    proc.poll()  # reap the leader if it was ours and is gone


def _live_members(pgid: int) -> list[int]:
    """Processes of group `pgid` that are not zombies."""
    members: list[int] = []
    for proc in psutil.process_iter(["status"]):
        try:
            if os.getpgid(proc.pid) == pgid and proc.info["status"] not in _GONE:
                members.append(proc.pid)
        except OSError:  # gone meanwhile
            continue
    return members
