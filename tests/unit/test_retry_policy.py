"""`patterns.tasks.RetryPolicy`: capped exponential backoff, full jitter, transient errors only."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from patterns.tasks import RetryPolicy


class Transient(Exception):
    pass


class SubTransient(Transient):
    pass


class Permanent(Exception):
    pass


def policy(**overrides: object) -> RetryPolicy:
    values: dict[str, object] = {
        "base_s": 2.0,
        "cap_s": 300.0,
        "max_retries": 5,
        "transient": (Transient,),
    }
    values.update(overrides)
    return RetryPolicy(**values)  # type: ignore[arg-type]


def test_the_window_doubles_with_each_retry_until_the_cap() -> None:
    p = policy(base_s=2.0, cap_s=30.0)
    assert [p.ceiling(n) for n in range(6)] == [2.0, 4.0, 8.0, 16.0, 30.0, 30.0]


@given(
    base=st.floats(min_value=1e-3, max_value=60),
    factor=st.floats(min_value=1, max_value=1e4),
    retries=st.integers(min_value=0, max_value=10_000),
)
def test_windows_never_shrink_and_never_pass_the_cap(
    base: float, factor: float, retries: int
) -> None:
    p = policy(base_s=base, cap_s=base * factor)
    assert p.ceiling(retries) <= p.ceiling(retries + 1) <= p.cap_s
    assert p.ceiling(retries) >= p.base_s


@given(retries=st.integers(min_value=0, max_value=10_000), seed=st.integers())
def test_a_jittered_delay_lies_inside_its_window(retries: int, seed: int) -> None:
    p = policy(draw=random.Random(seed).random)
    assert 0 <= p.countdown(retries) <= p.ceiling(retries)


def test_full_jitter_spreads_delays_over_the_whole_window() -> None:
    """Not `ceiling ± a little`: retries of many failing tasks must not arrive together."""
    p = policy(base_s=1.0, cap_s=1.0, draw=random.Random(7).random)
    delays = [p.countdown(0) for _ in range(2000)]
    assert min(delays) < 0.05
    assert max(delays) > 0.95
    assert 0.45 < sum(delays) / len(delays) < 0.55


def test_the_draw_scales_the_window() -> None:
    assert policy(base_s=0.5, draw=lambda: 1.0).countdown(3) == 4.0
    assert policy(base_s=0.5, draw=lambda: 0.0).countdown(3) == 0.0
    assert policy(base_s=0.5, draw=lambda: 0.25).countdown(3) == 1.0


def test_a_huge_retry_count_stays_at_the_cap_without_overflow() -> None:
    assert policy(cap_s=60.0).ceiling(10**9) == 60.0


def test_only_the_named_exceptions_and_their_subclasses_are_transient() -> None:
    p = policy()
    assert p.is_transient(Transient())
    assert p.is_transient(SubTransient())
    assert not p.is_transient(Permanent())
    assert not p.is_transient(ValueError())


@pytest.mark.parametrize(
    ("overrides", "complaint"),
    [
        ({"base_s": 0.0}, "base_s"),
        ({"base_s": -1.0}, "base_s"),
        ({"base_s": float("nan")}, "base_s"),
        ({"base_s": 10.0, "cap_s": 5.0}, "cap_s"),
        ({"cap_s": float("inf")}, "cap_s"),
        ({"max_retries": -1}, "max_retries"),
    ],
)
def test_a_nonsensical_policy_is_refused(overrides: dict[str, object], complaint: str) -> None:
    with pytest.raises(ValueError, match=complaint):
        policy(**overrides)
