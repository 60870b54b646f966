"""A circuit breaker for the Redis client: a server that stopped answering is not asked again for
a few seconds (guide: "Caching Strategy" and "Rate Limiting" degrade when Redis is down; this
makes a *hung* Redis degrade as fast as a refused one).

A refused connection fails in microseconds, so the kit's fail-open paths (cache, revocation
check, user snapshots, rate limits) stay quick in an outage. A Redis that accepts connections but
never answers (paused, partitioned, swapping) costs the socket timeout on every call instead, and
a request touches Redis several times: seconds per request, for every request. With the breaker,
the first timeout opens the circuit; for `open_for` seconds every call fails at once with a
`ConnectionError`, which those paths already handle; then calls go through again, and one
failure reopens it.

Hand-written rather than pybreaker: the check has to sit inside redis-py's connection (before
the socket is touched, in connect, send and read), where pybreaker's call-wrapping API, sync or
Tornado-only, does not fit; what is needed here is a deadline and a counter.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

from redis.asyncio.connection import Connection
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

logger = logging.getLogger("patterns.resilience")

_FAILURES = (RedisConnectionError, RedisTimeoutError, OSError)


class CircuitBreaker:
    """Open for `open_for` seconds after a failure; closed otherwise (no half-open trial: the
    first call after the window is the trial, and a failure reopens it)."""

    def __init__(self, open_for: float = 2.0, *, clock: Callable[[], float] = time.monotonic):
        self.open_for = open_for
        self._clock = clock
        self._open_until = float("-inf")
        self.trips = 0  # how many times it opened: for logs and tests

    @property
    def is_open(self) -> bool:
        return self._clock() < self._open_until

    def record_failure(self, exc: BaseException) -> None:
        if self.open_for <= 0:
            return
        if not self.is_open:
            self.trips += 1
            logger.warning(
                "Redis failed (%s); not calling it for %.1f s", type(exc).__name__, self.open_for
            )
        self._open_until = self._clock() + self.open_for

    def check(self) -> None:
        if self.is_open:
            raise RedisConnectionError(
                f"Redis is not called for {self.open_for:g} s after a failure (circuit open)"
            )


def guarded_connection_class(breaker: CircuitBreaker) -> type[Connection]:
    """A redis-py asyncio `Connection` class that consults `breaker` before any I/O and trips it
    on a connection error or timeout; give it to the pool as `connection_class`."""

    class BreakerConnection(Connection):
        async def connect_check_health(
            self, check_health: bool = True, retry_socket_connect: bool = True
        ) -> None:
            if self.is_connected:
                return
            breaker.check()
            try:
                await super().connect_check_health(check_health, retry_socket_connect)
            except _FAILURES as exc:
                breaker.record_failure(exc)
                raise

        async def send_packed_command(
            self, command: bytes | str | Iterable[bytes], check_health: bool = True
        ) -> None:
            breaker.check()
            try:
                await super().send_packed_command(command, check_health)
            except _FAILURES as exc:
                breaker.record_failure(exc)
                raise

        async def read_response(self, *args: Any, **kwargs: Any) -> Any:
            try:
                return await super().read_response(*args, **kwargs)
            except _FAILURES as exc:
                breaker.record_failure(exc)
                raise

    return BreakerConnection
