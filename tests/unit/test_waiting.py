"""`patterns.testing.waiting`: the bounded poll and the fake clock every test uses."""

from __future__ import annotations

import itertools
import subprocess
import sys

import pytest

from patterns.testing import FakeClock, wait_until, wait_until_async


def test_wait_until_returns_once_the_condition_holds() -> None:
    calls = itertools.count(1)
    wait_until(lambda: next(calls) >= 3, "the third call", interval=0)
    assert next(calls) == 4


def test_wait_until_fails_naming_what_it_waited_for() -> None:
    with pytest.raises(pytest.fail.Exception, match="waiting for the impossible"):
        wait_until(lambda: False, "the impossible", timeout_s=0.05, interval=0.01)


def test_ignored_errors_count_as_not_yet_and_others_propagate() -> None:
    calls = itertools.count(1)

    def flaky() -> bool:
        if next(calls) < 3:
            raise ConnectionError
        return True

    wait_until(flaky, "a server", interval=0, ignore=(ConnectionError,))
    with pytest.raises(ZeroDivisionError):
        wait_until(lambda: 1 / 0, "a bug", interval=0, ignore=(ConnectionError,))


def test_the_process_exiting_fails_at_once_with_its_exit_code() -> None:
    proc = subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"])
    proc.wait()
    with pytest.raises(pytest.fail.Exception, match=r"exited \(3\) before the server"):
        wait_until(lambda: False, "the server", timeout_s=60, interval=0, process=proc)


async def test_wait_until_async_awaits_coroutine_conditions() -> None:
    calls = itertools.count(1)

    async def third() -> bool:
        return next(calls) >= 3

    await wait_until_async(third, "the third call", interval=0)
    assert next(calls) == 4
    with pytest.raises(pytest.fail.Exception, match="waiting for never"):
        await wait_until_async(lambda: False, "never", timeout_s=0.05)


def test_the_fake_clock_moves_only_when_told() -> None:
    clock = FakeClock(5.0)
    assert clock() == clock() == 5.0
    clock.advance(2.5)
    clock.now += 1
    assert clock() == 8.5
