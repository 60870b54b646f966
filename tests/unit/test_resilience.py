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


def test_after_the_window_one_caller_tries_while_the_others_still_fail_fast(
    clock: FakeClock, breaker: CircuitBreaker
) -> None:
    trial, other = object(), object()
    breaker.record_failure(TimeoutError())
    clock.now += OPEN_FOR_S
    breaker.check(trial)  # the first to ask is the trial
    breaker.check(trial)  # and may go on (connect, send, read)
    with pytest.raises(RedisConnectionError):
        breaker.check(other)
    breaker.record_success()  # it answered: closed for everyone
    breaker.check(other)
    assert breaker.trips == 1


def test_a_failed_trial_reopens_and_a_lapsed_one_lets_another_try(
    clock: FakeClock, breaker: CircuitBreaker
) -> None:
    first, second = object(), object()
    breaker.record_failure(TimeoutError())
    clock.now += OPEN_FOR_S
    breaker.check(first)
    breaker.record_failure(TimeoutError())  # the trial failed
    assert breaker.trips == 2
    with pytest.raises(RedisConnectionError):
        breaker.check(first)
    clock.now += OPEN_FOR_S
    breaker.check(first)  # a new trial, which never reports (its caller was cancelled)
    clock.now += OPEN_FOR_S
    breaker.check(second)  # it lapsed: another caller tries


def test_a_zero_window_never_opens() -> None:
    breaker = CircuitBreaker(open_for=0)
    breaker.record_failure(TimeoutError())
    breaker.check(object())
    assert breaker.trips == 0
