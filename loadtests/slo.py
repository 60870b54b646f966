"""SLO thresholds for a load run and the verdict that sets Locust's exit code (guide: "Load
Testing").

Pure Python (no Locust import), so the rules have their own unit tests (`tests/unit/test_slo.py`)
and run anywhere. Locust's statistics are handed over as `RequestStats` rows; requests are
grouped by the prefix of their name (`"catalog: GET /api/v1/items"` is in group `catalog`), and
each group is held to its `Threshold`: failure ratio, p95 and p99 latency, a minimum number of
requests. The `TOTAL` group is every request together and may also demand a throughput.

Percentiles are computed the way Locust computes them, from the same histogram (response time
rounded as Locust rounds it → count), so the summary agrees with Locust's own report.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

TOTAL = "total"
DEFAULT = "*"  # the threshold of a group that has none of its own


@dataclass(frozen=True)
class Threshold:
    """What a group must hold. `None` leaves a bound unchecked."""

    max_failure_ratio: float = 0.0
    p95_ms: float | None = None
    p99_ms: float | None = None
    min_requests: int = 0
    min_rps: float | None = None  # only meaningful for TOTAL

    def __post_init__(self) -> None:
        if not 0.0 <= self.max_failure_ratio <= 1.0:
            raise ValueError("max_failure_ratio must be within 0..1")
        if self.min_requests < 0:
            raise ValueError("min_requests must be >= 0")


@dataclass(frozen=True)
class RequestStats:
    """One row of Locust's statistics: a request name and method with its histogram."""

    method: str
    name: str
    requests: int
    failures: int
    response_times: Mapping[int, int]  # response time in ms (as Locust rounds it) → count

    @property
    def group(self) -> str:
        return group_of(self.name)


@dataclass(frozen=True)
class GroupResult:
    group: str
    requests: int
    failures: int
    p50_ms: int
    p95_ms: int
    p99_ms: int
    rps: float
    threshold: Threshold
    violations: tuple[str, ...]

    @property
    def failure_ratio(self) -> float:
        return self.failures / self.requests if self.requests else 0.0


@dataclass(frozen=True)
class Verdict:
    groups: tuple[GroupResult, ...]
    duration_s: float
    unmatched: tuple[str, ...] = field(default=())  # required groups that saw no request
    excluded_from_total: tuple[str, ...] = field(default=())

    @property
    def violations(self) -> list[str]:
        found = [v for g in self.groups for v in g.violations]
        return found + [f"{name}: no requests (required)" for name in self.unmatched]

    @property
    def ok(self) -> bool:
        return not self.violations

    @property
    def exit_code(self) -> int:
        """0 when every threshold holds, 1 otherwise (Locust's own code for a failed run)."""
        return 0 if self.ok else 1


def group_of(name: str) -> str:
    """`"orders: POST /api/v1/orders"` → `"orders"`; a name without a prefix is its own group."""
    head, sep, _ = name.partition(": ")
    return head.strip() if sep else name


def percentile(response_times: Mapping[int, int], fraction: float) -> int:
    """The response time within which `fraction` of the requests finished (Locust's rule:
    walk the histogram from the slowest down until the rest fits the fraction)."""
    if not 0.0 <= fraction <= 1.0:
        raise ValueError("fraction must be within 0..1")
    total = sum(response_times.values())
    within = int(total * fraction)
    processed = 0
    for value in sorted(response_times, reverse=True):
        processed += response_times[value]
        if total - processed <= within:
            return value
    return 0


def _merge(rows: Iterable[RequestStats]) -> tuple[int, int, Counter[int]]:
    requests = failures = 0
    histogram: Counter[int] = Counter()
    for row in rows:
        requests += row.requests
        failures += row.failures
        histogram.update(row.response_times)
    return requests, failures, histogram


def _check(
    group: str, rows: Sequence[RequestStats], threshold: Threshold, duration_s: float
) -> GroupResult:
    requests, failures, histogram = _merge(rows)
    p50, p95, p99 = (percentile(histogram, f) for f in (0.50, 0.95, 0.99))
    rps = requests / duration_s if duration_s > 0 else 0.0
    found: list[str] = []
    ratio = failures / requests if requests else 0.0
    if ratio > threshold.max_failure_ratio:
        found.append(
            f"{group}: failure ratio {ratio:.2%} > {threshold.max_failure_ratio:.2%} "
            f"({failures} of {requests})"
        )
    if threshold.p95_ms is not None and requests and p95 >= threshold.p95_ms:
        found.append(f"{group}: p95 {p95} ms >= {threshold.p95_ms:g} ms")
    if threshold.p99_ms is not None and requests and p99 >= threshold.p99_ms:
        found.append(f"{group}: p99 {p99} ms >= {threshold.p99_ms:g} ms")
    if requests < threshold.min_requests:
        found.append(f"{group}: {requests} requests < {threshold.min_requests} required")
    if threshold.min_rps is not None and rps < threshold.min_rps:
        found.append(f"{group}: {rps:.0f} requests/s < {threshold.min_rps:g} required")
    return GroupResult(group, requests, failures, p50, p95, p99, rps, threshold, tuple(found))


def evaluate(
    rows: Iterable[RequestStats],
    thresholds: Mapping[str, Threshold],
    *,
    duration_s: float,
    required: Iterable[str] = (),
    exclude_from_total: Iterable[str] = (),
) -> Verdict:
    """Hold every group (and TOTAL) to its threshold. A group in `required` that received no
    request is a violation too: a load that silently skipped an endpoint proves nothing.
    Groups in `exclude_from_total` are judged on their own only (logins, with their budget)."""
    rows = [row for row in rows if row.requests > 0]
    excluded = set(exclude_from_total)
    by_group: dict[str, list[RequestStats]] = {}
    for row in rows:
        by_group.setdefault(row.group, []).append(row)
    default = thresholds.get(DEFAULT, Threshold())
    results = [
        _check(group, members, thresholds.get(group, default), duration_s)
        for group, members in sorted(by_group.items())
    ]
    counted = [row for row in rows if row.group not in excluded]
    results.append(_check(TOTAL, counted, thresholds.get(TOTAL, default), duration_s))
    unmatched = tuple(sorted(set(required) - set(by_group)))
    return Verdict(tuple(results), duration_s, unmatched, tuple(sorted(excluded)))


def format_rate(rps: float) -> str:
    """Requests per second with the digits that matter: `1234`, `12.5`, `0.41` (a login group
    at well under one request per second must not read as `0`)."""
    if rps >= 100:
        return f"{rps:.0f}"
    if rps >= 10:
        return f"{rps:.1f}"
    return f"{rps:.2f}"


def to_json(verdict: Verdict) -> dict[str, object]:
    """The verdict's figures, for `loadtests.compare` to set one run beside another."""
    return {
        "duration_s": verdict.duration_s,
        "ok": verdict.ok,
        "groups": {
            g.group: {
                "requests": g.requests,
                "failures": g.failures,
                "rps": g.rps,
                "p50_ms": g.p50_ms,
                "p95_ms": g.p95_ms,
                "p99_ms": g.p99_ms,
            }
            for g in verdict.groups
        },
    }


def render(verdict: Verdict, *, title: str = "SLO verdict") -> str:
    """A short plain-text summary: one line per group, then PASS or the violations."""
    lines = [
        title,
        f"duration {verdict.duration_s:.0f} s",
        "",
        f"{'group':<28}{'requests':>10}{'fail %':>8}{'req/s':>8}"
        f"{'p50':>7}{'p95':>7}{'p99':>7}   thresholds (p95/p99 ms, fail %)",
    ]
    for g in verdict.groups:
        t = g.threshold
        bounds = "/".join("-" if b is None else f"{b:g}" for b in (t.p95_ms, t.p99_ms))
        lines.append(
            f"{g.group:<28}{g.requests:>10}{g.failure_ratio:>8.2%}{format_rate(g.rps):>8}"
            f"{g.p50_ms:>7}{g.p95_ms:>7}{g.p99_ms:>7}   {bounds}, {t.max_failure_ratio:.2%}"
        )
    if verdict.excluded_from_total:
        lines.append(f"({TOTAL} leaves out: {', '.join(verdict.excluded_from_total)})")
    lines.append("")
    if verdict.ok:
        lines.append("PASS: every threshold holds")
    else:
        lines.append("FAIL:")
        lines += [f"  - {v}" for v in verdict.violations]
    return "\n".join(lines) + "\n"


# --- the kit's thresholds --------------------------------------------------------------------

# Reads and writes of the app: the acceptance bar (no failure, p95 under 100 ms) for every group.
SERVICE = Threshold(max_failure_ratio=0.0, p95_ms=100, p99_ms=250)
# Logging in verifies an argon2id hash on purpose (tens of milliseconds of CPU, the defence
# against offline guessing); every simulated user does it once, at start, so during the ramp-up
# the logins queue behind each other on a 2-core machine. Their own budget keeps them from
# hiding behind, or spoiling, the figures of the endpoints under test.
LOGIN = Threshold(max_failure_ratio=0.0, p95_ms=2000, p99_ms=4000)

PROFILES: dict[str, dict[str, Threshold]] = {
    "default": {DEFAULT: SERVICE, "auth": LOGIN, TOTAL: SERVICE},
    # The rate-limit scenario: a 429 is the expected answer, so it is no failure, but at least
    # one must be seen, and logins below the limit must still succeed.
    "ratelimit": {
        DEFAULT: Threshold(max_failure_ratio=0.0),
        "ratelimit-429": Threshold(max_failure_ratio=0.0, min_requests=1),
        "ratelimit-allowed": Threshold(max_failure_ratio=0.0, min_requests=1),
    },
}
REQUIRED: dict[str, tuple[str, ...]] = {
    "default": (),
    "ratelimit": ("ratelimit-429", "ratelimit-allowed"),
}
# The logins are judged against their own budget, and kept out of the total so that its p95 is
# the service's (a few hundred argon2 logins would otherwise set the p95 of a short run).
EXCLUDED_FROM_TOTAL: dict[str, tuple[str, ...]] = {"default": ("auth",), "ratelimit": ()}


def thresholds_for(profile: str, *, min_rps: float | None = None) -> dict[str, Threshold]:
    """The named profile's thresholds, with a throughput floor on TOTAL when asked for."""
    if profile not in PROFILES:
        raise ValueError(f"unknown SLO profile {profile!r}; known: {', '.join(PROFILES)}")
    chosen = dict(PROFILES[profile])
    if min_rps is not None:
        base = chosen.get(TOTAL, chosen.get(DEFAULT, Threshold()))
        chosen[TOTAL] = Threshold(
            base.max_failure_ratio, base.p95_ms, base.p99_ms, base.min_requests, min_rps
        )
    return chosen
