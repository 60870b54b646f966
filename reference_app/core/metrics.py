"""The app's metrics: request metrics and the business counters (guide: "Prometheus Metrics").

Defined once per process at import, on prometheus-client's default registry, which `/metrics`
exposes. Count business events after the transaction commits (`on_commit`), so a rolled-back
registration is not counted.
"""

from __future__ import annotations

from prometheus_client import Counter

from patterns.observability.metrics import HttpMetrics, PoolMetrics

HTTP_METRICS = HttpMetrics()
POOL_METRICS = PoolMetrics()

REGISTRATIONS = Counter("user_registrations_total", "Users registered.")
ORDERS_CREATED = Counter("orders_created_total", "Orders created.")
CACHE_HITS = Counter("cache_hits_total", "Cache lookups answered from the cache.", ["namespace"])
CACHE_MISSES = Counter("cache_misses_total", "Cache lookups that fell through.", ["namespace"])
RATE_LIMIT_REJECTIONS = Counter(
    "rate_limit_rejections_total", "Requests refused by a rate limit.", ["limit"]
)
TASK_OUTCOMES = Counter(
    "task_outcomes_total", "Celery task runs by task and outcome.", ["task", "outcome"]
)
