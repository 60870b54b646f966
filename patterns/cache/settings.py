"""The cache's tunables in one object (guide: "Redis Caching", "Caching Pitfalls")."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["CacheSettings"]


@dataclass(frozen=True)
class CacheSettings:
    """How one `Cache` behaves; every field has a default fit for an API process.

    `prefix`: the first key segment, shared by every namespace of one application.
    `memory_maxsize`: entries in this process's memory tier (`patterns.cache.memory`).
    `lock_ttl`: how long a recomputation may hold a key's lock before another process may take
    over. `wait_timeout`: how long a caller waits for another process's recomputation before
    computing itself; it polls for the value from `poll_interval` seconds, doubling up to
    `max_poll_interval`. `retry_after`: after a Redis error, reads skip Redis for this many
    seconds (an outage costs one timeout, not one per request). `unapplied_retry_s`: how often
    invalidations Redis missed are retried in the background. `warn_interval`: at most one
    "Redis unavailable" warning per this many seconds.
    """

    prefix: str = "cache"
    memory_maxsize: int = 1024
    lock_ttl: float = 10.0
    wait_timeout: float = 5.0
    poll_interval: float = 0.005
    max_poll_interval: float = 0.1
    retry_after: float = 1.0
    unapplied_retry_s: float = 1.0
    warn_interval: float = 30.0

    def __post_init__(self) -> None:
        if not (
            0 < self.poll_interval <= self.max_poll_interval
            and self.lock_ttl > 0
            and self.wait_timeout >= 0
            and self.unapplied_retry_s > 0
        ):
            raise ValueError("intervals and timeouts must be positive")
