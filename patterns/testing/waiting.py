"""Waiting in tests without sleeping for a guess: a bounded poll, and a clock tests move.

A test that waits for another process or thread (a server to answer, a worker to pick up a
message, a row to change) polls for the state it needs with a deadline, and fails naming what it
waited for; a fixed `sleep` is either too short on a busy machine or wasted on a quiet one.
Code that reads time through an injected clock (the cache, the resilience window, repeated
warnings) is tested with `FakeClock` instead of waiting at all.
"""

from __future__ import annotations

import asyncio
import inspect
import subprocess
import time
from collections.abc import Awaitable, Callable

import pytest

__all__ = ["FakeClock", "wait_until", "wait_until_async"]

DEFAULT_TIMEOUT_S = 10.0


class FakeClock:
    """Monotonic seconds that only move when the test moves them (`clock.now += 5`)."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def wait_until(
    condition: Callable[[], object],
    what: str,
    *,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    interval: float = 0.05,
    ignore: tuple[type[BaseException], ...] = (),
    process: subprocess.Popen[bytes] | None = None,
) -> None:
    """Call `condition` every `interval` seconds until it returns something truthy; fail the
    test after `timeout_s` seconds ("timed out waiting for {what}"). Exceptions in `ignore`
    raised by `condition` count as "not yet" (a server that does not accept connections yet).
    With `process` (the subprocess that should bring the state about), its exit fails the test
    at once instead of after the whole timeout."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            if condition():
                return
        except ignore:
            pass
        if process is not None and process.poll() is not None:
            pytest.fail(f"the process exited ({process.returncode}) before {what}")
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout_s:g} s waiting for {what}")
        time.sleep(interval)  # the polling interval; the loop checks the state itself


async def wait_until_async(
    condition: Callable[[], object | Awaitable[object]],
    what: str,
    *,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    interval: float = 0.01,
    ignore: tuple[type[BaseException], ...] = (),
) -> None:
    """`wait_until` for a test's event loop: `condition` may be a coroutine function, and the
    loop keeps running other tasks between polls."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while True:
        try:
            result = condition()
            if inspect.isawaitable(result):
                result = await result
            if result:
                return
        except ignore:
            pass
        if loop.time() > deadline:
            pytest.fail(f"timed out after {timeout_s:g} s waiting for {what}")
        await asyncio.sleep(interval)  # the polling interval; the loop checks the state itself
