"""The load run's SLO verdict (loadtests/slo.py): grouping, percentiles, thresholds, exit code."""

from __future__ import annotations

import pytest

from loadtests import slo
from loadtests.slo import DEFAULT, TOTAL, RequestStats, Threshold


def row(name: str, times: dict[int, int], failures: int = 0, method: str = "GET") -> RequestStats:
    return RequestStats(method, name, sum(times.values()), failures, times)


def test_group_is_the_name_prefix_before_colon_space() -> None:
    assert slo.group_of("orders: POST /api/v1/orders") == "orders"
    assert slo.group_of("catalog: GET /api/v1/items/{id}") == "catalog"
    assert slo.group_of("/health/ready") == "/health/ready"
    assert slo.group_of("http://x:8000/ping") == "http://x:8000/ping"  # no ": " separator


def test_percentile_follows_locust_rule_on_the_histogram() -> None:
    # 100 requests: 90 at 10 ms, 5 at 50 ms, 4 at 90 ms, 1 at 400 ms. Locust walks down from
    # the slowest and stops where the requests above the value are no more than 1 - fraction
    # of them, so a value that exactly 95 % of the requests reach is not yet the p95.
    times = {10: 90, 50: 5, 90: 4, 400: 1}
    assert slo.percentile(times, 0.50) == 10
    assert slo.percentile(times, 0.90) == 50
    assert slo.percentile(times, 0.95) == 90
    assert slo.percentile(times, 0.99) == 400
    assert slo.percentile(times, 1.0) == 400
    assert slo.percentile({}, 0.95) == 0


def test_percentile_rejects_a_fraction_outside_zero_to_one() -> None:
    with pytest.raises(ValueError, match="fraction"):
        slo.percentile({1: 1}, 95)


def test_run_within_every_threshold_passes_with_exit_code_zero() -> None:
    verdict = slo.evaluate(
        [row("catalog: GET /items", {5: 98, 60: 2}), row("orders: POST /orders", {20: 100})],
        {DEFAULT: Threshold(p95_ms=100, p99_ms=250)},
        duration_s=10,
    )
    assert verdict.ok
    assert verdict.exit_code == 0
    assert [g.group for g in verdict.groups] == ["catalog", "orders", TOTAL]
    total = verdict.groups[-1]
    assert (total.requests, total.failures, total.rps) == (200, 0, 20.0)


def test_a_single_failure_breaks_a_zero_failure_budget() -> None:
    verdict = slo.evaluate(
        [row("orders: POST /orders", {20: 1000}, failures=1)],
        {DEFAULT: Threshold(max_failure_ratio=0.0)},
        duration_s=10,
    )
    assert verdict.exit_code == 1
    assert verdict.violations[0].startswith("orders: failure ratio 0.10% > 0.00% (1 of 1000)")


def test_p95_at_the_bound_fails_because_the_bound_is_strict() -> None:
    times = {100: 50, 10: 50}  # p95 is exactly 100 ms: "p95 under 100 ms" does not hold
    verdict = slo.evaluate(
        [row("catalog: x", times)], {DEFAULT: Threshold(p95_ms=100)}, duration_s=1
    )
    assert any("p95 100 ms >= 100 ms" in v for v in verdict.violations)


def test_p99_is_checked_separately_from_p95() -> None:
    times = {10: 97, 300: 3}  # p95 10 ms, p99 300 ms
    verdict = slo.evaluate(
        [row("catalog: x", times)], {DEFAULT: Threshold(p95_ms=100, p99_ms=250)}, duration_s=1
    )
    assert [v for v in verdict.violations if v.startswith("catalog")] == [
        "catalog: p99 300 ms >= 250 ms"
    ]


def test_group_threshold_overrides_the_default() -> None:
    rows = [row("auth: POST /login", {900: 10}), row("catalog: GET /items", {10: 1000})]
    thresholds = {DEFAULT: Threshold(p95_ms=100), "auth": Threshold(p95_ms=2000)}
    verdict = slo.evaluate(rows, thresholds, duration_s=1)
    assert verdict.ok, verdict.violations


def test_groups_are_judged_on_their_merged_histogram() -> None:
    # Each row alone has a fast p95; together 10% of the group is slow, so p95 is slow.
    rows = [row("catalog: a", {10: 90}), row("catalog: b", {200: 10})]
    verdict = slo.evaluate(rows, {DEFAULT: Threshold(p95_ms=100)}, duration_s=1)
    catalog = verdict.groups[0]
    assert (catalog.requests, catalog.p95_ms) == (100, 200)
    assert not verdict.ok


def test_required_group_without_requests_fails_the_run() -> None:
    verdict = slo.evaluate(
        [row("ratelimit-allowed: POST /login", {5: 5})],
        {DEFAULT: Threshold()},
        duration_s=1,
        required=["ratelimit-429", "ratelimit-allowed"],
    )
    assert verdict.violations == ["ratelimit-429: no requests (required)"]
    assert verdict.exit_code == 1


def test_rows_without_requests_are_ignored() -> None:
    verdict = slo.evaluate(
        [row("catalog: x", {})], {DEFAULT: Threshold(min_requests=1)}, duration_s=1
    )
    assert [g.group for g in verdict.groups] == [TOTAL]


def test_throughput_floor_applies_to_the_total() -> None:
    rows = [row("profile: GET /profile", {10: 4000})]
    thresholds = slo.thresholds_for("default", min_rps=500)
    slow = slo.evaluate(rows, thresholds, duration_s=10)  # 400 requests/s
    fast = slo.evaluate(rows, thresholds, duration_s=5)  # 800 requests/s
    assert slow.violations == ["total: 400 requests/s < 500 required"]
    assert fast.ok


def test_default_profile_holds_the_service_to_p95_under_100_ms_and_no_failures() -> None:
    thresholds = slo.thresholds_for("default")
    for group in (DEFAULT, TOTAL):
        assert thresholds[group].p95_ms == 100
        assert thresholds[group].max_failure_ratio == 0.0


def test_ratelimit_profile_requires_both_429s_and_admitted_logins() -> None:
    assert set(slo.REQUIRED["ratelimit"]) == {"ratelimit-429", "ratelimit-allowed"}
    assert slo.thresholds_for("ratelimit")["ratelimit-429"].min_requests == 1


def test_unknown_profile_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown SLO profile"):
        slo.thresholds_for("nightly")


def test_threshold_refuses_a_ratio_outside_zero_to_one() -> None:
    with pytest.raises(ValueError, match="max_failure_ratio"):
        Threshold(max_failure_ratio=5)


def test_summary_names_each_group_and_the_verdict() -> None:
    verdict = slo.evaluate(
        [row("orders: POST /orders", {20: 99}, failures=1)],
        {DEFAULT: Threshold(p95_ms=100, p99_ms=250)},
        duration_s=10,
    )
    text = slo.render(verdict, title="SLO profile 'default'")
    assert text.startswith("SLO profile 'default'\n")
    assert "orders" in text
    assert "100/250, 0.00%" in text
    assert "FAIL:" in text
    assert "  - orders: failure ratio" in text
    passing = slo.render(slo.evaluate([], {}, duration_s=1))
    assert "PASS: every threshold holds" in passing


def test_logins_are_judged_on_their_own_and_left_out_of_the_total() -> None:
    rows = [row("auth: POST /login", {400: 50}), row("profile: GET /profile", {10: 950})]
    thresholds = slo.thresholds_for("default")
    verdict = slo.evaluate(
        rows, thresholds, duration_s=1, exclude_from_total=slo.EXCLUDED_FROM_TOTAL["default"]
    )
    total = verdict.groups[-1]
    assert (total.group, total.requests, total.p95_ms) == (TOTAL, 950, 10)
    assert verdict.ok
    assert "(total leaves out: auth)" in slo.render(verdict)
    # Counted in, the same logins would have broken the total's p95.
    assert not slo.evaluate(rows, thresholds, duration_s=1).ok


@pytest.mark.parametrize(
    ("rps", "shown"),
    [(0.41, "0.41"), (0.004, "0.00"), (7.25, "7.25"), (12.34, "12.3"), (812.6, "813")],
)
def test_small_rates_keep_their_digits(rps: float, shown: str) -> None:
    assert slo.format_rate(rps) == shown


def test_summary_shows_a_login_group_under_one_request_per_second_as_it_is() -> None:
    # 41 logins in 100 s: Locust's report says 0.41 req/s, and so must the summary.
    verdict = slo.evaluate(
        [row("auth: POST /login", {300: 41}), row("catalog: GET /items", {5: 5000})],
        {DEFAULT: Threshold()},
        duration_s=100,
    )
    auth_line = next(line for line in slo.render(verdict).splitlines() if line.startswith("auth"))
    assert auth_line.split()[3] == "0.41"


def test_verdict_as_json_carries_each_groups_figures() -> None:
    verdict = slo.evaluate(
        [row("orders: POST /orders", {20: 90, 80: 10})], {DEFAULT: Threshold()}, duration_s=10
    )
    data = slo.to_json(verdict)
    assert data["groups"]["orders"] == {  # type: ignore[index]
        "requests": 100,
        "failures": 0,
        "rps": 10.0,
        "p50_ms": 20,
        "p95_ms": 80,
        "p99_ms": 80,
    }
