"""A circuit breaker for the Redis client: a server that stopped answering is not asked again for
a few seconds (guide: "Caching Strategy" and "Rate Limiting" degrade when Redis is down; this
makes a *hung* Redis degrade as fast as a refused one).

A refused connection fails in microseconds, so the kit's fail-open paths (cache, revocation
check, user snapshots, rate limits) stay quick in an outage. A Redis that accepts connections but
never answers (paused, partitioned, swapping) costs the socket timeout on every call instead, and
a request touches Redis several times: seconds per request, for every request. With the breaker,
the first timeout opens the circuit; for `open_for` seconds every call fails at once with a
`ConnectionError`, which those paths already handle; then one connection tries again while the
others still fail fast, and its answer closes the circuit or its failure reopens it.

Hand-written rather than pybreaker: the check has to sit inside redis-py's connection (before
the socket is touched, in connect, send and read), where pybreaker's call-wrapping API, sync or
Tornado-only, does not fit; what is needed here is a deadline and a counter.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, ParamSpec

from redis.asyncio.connection import Connection
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

logger = logging.getLogger("patterns.resilience")

_FAILURES = (RedisConnectionError, RedisTimeoutError, OSError)
_P = ParamSpec("_P")


class CircuitBreaker:
    """Open for `open_for` seconds after a failure. Then half-open: one connection, the first to
    ask, tries the server, while the others keep failing at once; its success closes the circuit,
    its failure opens it again. Without that single trial every request in flight when the
    window ends would wait out the socket timeout together (against a paused Redis, all clients
    stalled ~1 s every ~3 s).

    `check(owner)` before I/O (raises `ConnectionError` when refused), `record_success()` after
    an answer, `record_failure(exc)` after a connection error or timeout. A trial whose owner
    never reports (cancelled) lapses after `open_for`, and another caller may try.
    """

    def __init__(self, open_for: float = 2.0, *, clock: Callable[[], float] = time.monotonic):
        self.open_for = open_for
        self._clock = clock
        self._open_until = float("-inf")  # -inf: closed
        self._tripped = False
        self._trial_owner: object | None = None
        self._trial_until = float("-inf")
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
        self._tripped = True
        self._trial_owner = None

    def record_success(self) -> None:
        if self._tripped:
            self._tripped = False
            self._trial_owner = None
            logger.info("Redis answers again")

    def check(self, owner: object) -> None:
        if not self._tripped:
            return
        now = self._clock()
        if now >= self._open_until:  # half-open
            if self._trial_owner is None or now >= self._trial_until:
                self._trial_owner, self._trial_until = owner, now + self.open_for
            if self._trial_owner is owner:
                return
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
            await self._unless_open(
                super().connect_check_health, check_health, retry_socket_connect
            )

        async def send_packed_command(
            self, command: bytes | str | Iterable[bytes], check_health: bool = True
        ) -> None:
            await self._unless_open(super().send_packed_command, command, check_health)

        async def _unless_open(
            self, io: Callable[_P, Awaitable[None]], *args: _P.args, **kwargs: _P.kwargs
        ) -> None:
            """`await io(...)` unless the breaker refuses this connection; a failure trips it."""
            breaker.check(self)
            try:
                await io(*args, **kwargs)
            except _FAILURES as exc:
                breaker.record_failure(exc)
                raise

        async def read_response(self, *args: Any, **kwargs: Any) -> Any:
            try:
                response = await super().read_response(*args, **kwargs)
            except _FAILURES as exc:
                breaker.record_failure(exc)
                raise
            breaker.record_success()
            return response

    return BreakerConnection
