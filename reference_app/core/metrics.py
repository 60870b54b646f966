"""The app's business counters (guide: "Prometheus Metrics")."""

from __future__ import annotations

from prometheus_client import Counter

REGISTRATIONS = Counter("user_registrations_total", "Users registered")
ORDERS_CREATED = Counter("orders_created_total", "Orders created")
CACHE_HITS = Counter("cache_hits_total", "Cache hits", ["namespace"])
CACHE_MISSES = Counter("cache_misses_total", "Cache misses", ["namespace"])
RATE_LIMIT_REJECTIONS = Counter(
    "rate_limit_rejections_total", "Requests refused by a rate limit", ["limit"]
)
TASK_OUTCOMES = Counter("task_outcomes_total", "Background task outcomes", ["task", "outcome"])
