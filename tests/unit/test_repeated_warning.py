"""`RepeatedWarning`: the first warning at once, then one per interval with the count held back."""

from __future__ import annotations

import logging

import pytest

from patterns.observability.repeated_warning import RepeatedWarning
from patterns.testing import FakeClock

LOGGER = "kit.test.repeated"


def test_repeats_inside_the_interval_are_counted_and_reported_with_the_next_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = FakeClock(100.0)
    warning = RepeatedWarning(logging.getLogger(LOGGER), interval_s=30, clock=clock)

    with caplog.at_level(logging.WARNING, logger=LOGGER):
        assert warning.warn("Redis down (%s)", "refused") is True
        clock.now = 129.9
        assert [warning.warn("Redis down (%s)", "refused") for _ in range(3)] == [False] * 3
        clock.now = 130.0
        assert warning.warn("Redis down (%s)", "timeout") is True
        assert warning.warn("Redis down (%s)", "timeout") is False

    assert [r.getMessage() for r in caplog.records] == [
        "Redis down (refused) (0 similar warnings suppressed)",
        "Redis down (timeout) (3 similar warnings suppressed)",
    ]
    assert {r.levelno for r in caplog.records} == {logging.WARNING}
