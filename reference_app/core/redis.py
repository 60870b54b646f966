"""The Redis client: the configured server, or in-process fakeredis in the embedded default."""

from __future__ import annotations

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff

from patterns.resilience import CircuitBreaker, guarded_connection_class
from reference_app.core.config import Settings


def make_redis(settings: Settings, *, breaker: CircuitBreaker | None = None) -> Redis:
    if settings.redis_url is None:
        import fakeredis

        fake: Redis = fakeredis.FakeAsyncRedis()
        return fake
    # Short timeouts and one quick retry: a Redis outage must degrade a request, not hang it
    # (redis-py's default retry policy spends seconds per call on a refused connection). A
    # blocking pool makes a burst wait briefly for a free connection instead of failing with
    # "Too many connections". The circuit breaker (one per client, so per process) stops a hung
    # server from costing the socket timeout on every call (patterns/resilience.py).
    breaker = breaker or CircuitBreaker(open_for=settings.redis_circuit_open_s)
    pool = BlockingConnectionPool.from_url(
        settings.redis_url,
        connection_class=guarded_connection_class(breaker),
        max_connections=settings.redis_max_connections,
        timeout=2.0,
        socket_connect_timeout=1.0,
        socket_timeout=1.0,
        health_check_interval=30,
        retry=Retry(ExponentialBackoff(cap=0.05, base=0.01), retries=1),
    )
    return Redis.from_pool(pool)
