"""The circuit breaker's states, on a fake clock (patterns/resilience.py)."""

from __future__ import annotations

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

from patterns.resilience import CircuitBreaker
from patterns.testing import FakeClock

OPEN_FOR_S = 2.0


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(100.0)


@pytest.fixture
def breaker(clock: FakeClock) -> CircuitBreaker:
    """A closed breaker that stays open for `OPEN_FOR_S` seconds after a failure."""
    return CircuitBreaker(open_for=OPEN_FOR_S, clock=clock)


def test_closed_until_a_failure_then_open_for_the_window(
    clock: FakeClock, breaker: CircuitBreaker
) -> None:
    a, b = object(), object()
    breaker.check(a)  # closed: anyone may call
    breaker.record_failure(TimeoutError())
    assert breaker.trips == 1
    for owner in (a, b):
        with pytest.raises(RedisConnectionError, match="circuit open"):
            breaker.check(owner)
    clock.now += 1.9
    with pytest.raises(RedisConnectionError):
        breaker.check(a)


@pytest.fixture
def half_open(clock: FakeClock, breaker: CircuitBreaker) -> CircuitBreaker:
    """`breaker` opened by a failure, its window just over: the next caller is the trial."""
    breaker.record_failure(TimeoutError())
    clock.now += OPEN_FOR_S
    return breaker


def test_after_the_window_one_caller_tries_while_the_others_still_fail_fast(
    half_open: CircuitBreaker,
) -> None:
    trial, other = object(), object()
    half_open.check(trial)  # the first to ask is the trial
    half_open.check(trial)  # and may go on (connect, send, read)
    with pytest.raises(RedisConnectionError):
        half_open.check(other)
    half_open.record_success()  # it answered: closed for everyone
    half_open.check(other)
    assert half_open.trips == 1


def test_a_failed_trial_reopens_and_a_lapsed_one_lets_another_try(
    clock: FakeClock, half_open: CircuitBreaker
) -> None:
    first, second = object(), object()
    half_open.check(first)
    half_open.record_failure(TimeoutError())  # the trial failed: open again
    assert half_open.trips == 2
    with pytest.raises(RedisConnectionError):
        half_open.check(first)
    clock.now += OPEN_FOR_S
    half_open.check(first)  # a new trial, which never reports (its caller was cancelled)
    clock.now += OPEN_FOR_S
    half_open.check(second)  # it lapsed: another caller tries


def test_a_zero_window_never_opens() -> None:
    breaker = CircuitBreaker(open_for=0)
    breaker.record_failure(TimeoutError())
    breaker.check(object())
    assert breaker.trips == 0
