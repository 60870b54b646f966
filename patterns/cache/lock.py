"""Across processes, one recomputation at a time per key (guide: "Caching Pitfalls": "Cache
Stampede").

The loader holds a Redis lock (`SET NX PX` with a random token, released by compare-and-delete
in Lua: redis-py's `Lock`); the others poll for the value with exponential backoff for at most
`wait_timeout`, take over if the lock disappears without a value (its holder died or failed),
and compute themselves when the wait runs out. No loop is unbounded, whatever the clock says.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Callable

from redis.asyncio import Redis
from redis.asyncio.lock import Lock
from redis.exceptions import LockError, RedisError

from patterns.cache.codec import as_bytes
from patterns.cache.settings import CacheSettings

__all__ = ["LoadLock"]

logger = logging.getLogger("patterns.cache")


class LoadLock:
    """Find a key's value in Redis, or take the right to compute it.

    `on_event(name, namespace)` hears "lock_wait" and "lock_timeout"; `on_redis_error` hears a
    failed release (the lock then expires after `lock_ttl`). Other Redis errors propagate.
    """

    def __init__(
        self,
        redis: Redis,
        settings: CacheSettings,
        *,
        clock: Callable[[], float],
        on_event: Callable[[str, str], None],
        on_redis_error: Callable[[RedisError], None],
    ) -> None:
        self._redis = redis
        self._settings = settings
        self._clock = clock
        self._on_event = on_event
        self._on_redis_error = on_redis_error
        # Backoff doubles from poll_interval; this many polls cover wait_timeout even if the
        # clock stood still.
        self._max_polls = math.ceil(settings.wait_timeout / settings.poll_interval) + 1

    async def get(self, key: str) -> bytes | None:
        raw = await self._redis.get(key)
        return None if raw is None else as_bytes(raw)

    async def find_or_lock(self, key: str, namespace: str) -> tuple[bytes | None, Lock | None]:
        """The stored value; or None and the key's lock (this caller computes); or None and no
        lock (the wait for another process ran out: compute anyway)."""
        deadline = self._clock() + self._settings.wait_timeout
        # A second round only after a lock holder vanished without storing a value.
        for _ in range(2):
            raw = await self.get(key)
            if raw is not None:
                return raw, None
            lock = self._redis.lock(
                f"{key}:lock", timeout=self._settings.lock_ttl, blocking=False, thread_local=False
            )
            if await lock.acquire():
                # The previous holder may have stored the value between our GET and our lock.
                raw = await self.get(key)
                if raw is not None:
                    await self.release(lock)
                    return raw, None
                return None, lock
            outcome = await self._wait_for_value(key, namespace, deadline)
            if isinstance(outcome, bytes):
                return outcome, None
            if outcome == "timeout":
                break
        self._on_event("lock_timeout", namespace)
        return None, None

    async def _wait_for_value(self, key: str, namespace: str, deadline: float) -> bytes | str:
        """Poll with backoff until the value appears ("vanished": the lock is gone without a
        value; "timeout": the deadline passed)."""
        self._on_event("lock_wait", namespace)
        delay = self._settings.poll_interval
        for _ in range(self._max_polls):
            left = deadline - self._clock()
            if left <= 0:
                break
            await asyncio.sleep(min(delay, left))
            async with self._redis.pipeline(transaction=False) as pipe:
                pipe.get(key)
                pipe.exists(f"{key}:lock")
                raw, locked = await pipe.execute()
            if raw is not None:
                return as_bytes(raw)
            if not locked:
                return "vanished"
            delay = min(delay * 2, self._settings.max_poll_interval)
        return "timeout"

    async def release(self, lock: Lock) -> None:
        try:
            await lock.release()
        except LockError:
            # Our lock expired (the computation outlived lock_ttl) and may now be someone
            # else's; the compare-and-delete release left theirs alone.
            logger.warning("cache lock %s expired before release", lock.name)
        except RedisError as exc:
            self._on_redis_error(exc)
