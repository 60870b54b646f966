"""Invalidations Redis did not take, applied later (guide: "Caching Pitfalls": "Stale Data").

When Redis is down, an invalidation cannot be applied; forgetting it would let the old entry be
served for the rest of its TTL once Redis is back (a partition or a paused server keeps its
data). The backlog keeps the keys and tags, applies them before this process next reads from
Redis, and retries in the background too, since other processes read Redis directly.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable

from redis.exceptions import RedisError

__all__ = ["InvalidationBacklog"]

logger = logging.getLogger("patterns.cache")

MAX_PENDING = 10_000
RETRY_FOR_S = 600.0  # after that, the next read from Redis applies them


class InvalidationBacklog:
    """Keys and tags waiting for Redis.

    `drop(keys, tags)` deletes them in Redis (raising RedisError while it is down); the
    background retry calls it every `retry_s` seconds of `clock` for at most `RETRY_FOR_S`.
    """

    def __init__(
        self,
        drop: Callable[[list[str], list[str]], Awaitable[None]],
        *,
        retry_s: float,
        clock: Callable[[], float],
    ) -> None:
        self._drop = drop
        self._retry_s = retry_s
        self._clock = clock
        self._keys: set[str] = set()
        self._tags: set[str] = set()
        self.retry: asyncio.Task[None] | None = None
        """The background retry, while one runs."""

    def __bool__(self) -> bool:
        return bool(self._keys or self._tags)

    def remember(self, keys: Iterable[str], tags: Iterable[str]) -> None:
        self._keys.update(keys)
        self._tags.update(tags)
        if len(self._keys) + len(self._tags) > MAX_PENDING:
            # A long outage under heavy writes: stop growing, say so. What is kept is still
            # applied; the rest is bounded by the entries' TTLs.
            logger.error("cache: too many invalidations waiting for Redis; dropping them")
            self._keys.clear()
            self._tags.clear()
        if self.retry is None or self.retry.done():
            try:
                self.retry = asyncio.get_running_loop().create_task(self._retry())
            except RuntimeError:  # no loop (a sync caller): the next read applies them
                self.retry = None

    async def apply(self) -> None:
        """Apply what waits; raises RedisError if Redis is still down (and keeps it)."""
        if not self:
            return
        keys, tags = list(self._keys), list(self._tags)
        await self._drop(keys, tags)
        self._keys.difference_update(keys)
        self._tags.difference_update(tags)
        logger.info(
            "cache: applied %d invalidations that had waited for Redis", len(keys) + len(tags)
        )

    async def _retry(self) -> None:
        """Staleness after an outage is bounded by about `retry_s`, in every process, not by
        the entries' TTL."""
        deadline = self._clock() + RETRY_FOR_S
        for _ in range(int(RETRY_FOR_S / self._retry_s) + 1):
            if not self or self._clock() >= deadline:
                return
            await asyncio.sleep(self._retry_s)
            try:
                await self.apply()
            except RedisError:
                continue

    def close(self) -> None:
        """Stop the background retry (at shutdown); what it had not applied is lost with the
        process, as it would be in a crash, and bounded by the entries' TTLs."""
        if self.retry is not None:
            self.retry.cancel()
