"""The in-process tier of the multi-level cache (guide: "Multi-Level Caching").

The guide's memory tier is a plain dict: unbounded (it grows until the process is killed) and
without expiry (an entry outlives its Redis copy and every invalidation forever). This one is
a bounded LRU where every entry expires after its own TTL (cachetools' `TLRUCache`). It holds
serialised bytes, so every read decodes a fresh object and no two requests share one mutable
value.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

from cachetools import TLRUCache

__all__ = ["MemoryTier"]


def _expires(_key: str, value: tuple[bytes, float], now: float) -> float:
    return now + value[1]


class MemoryTier:
    """At most `maxsize` entries; least recently used evicted first; each with its own TTL."""

    def __init__(self, maxsize: int = 1024, *, timer: Callable[[], float] = time.monotonic):
        if maxsize < 1:
            raise ValueError("maxsize must be >= 1")
        self._cache: TLRUCache[str, tuple[bytes, float], float] = TLRUCache(
            maxsize, _expires, timer
        )

    def get(self, key: str) -> bytes | None:
        entry = self._cache.get(key)
        return entry[0] if entry is not None else None

    def set(self, key: str, raw: bytes, ttl: float) -> None:
        self._cache[key] = (raw, ttl)

    def discard(self, keys: Iterable[str]) -> None:
        for key in keys:
            self._cache.pop(key, None)

    def clear(self) -> None:
        self._cache.clear()

    def __len__(self) -> int:
        self._cache.expire()
        return len(self._cache)

    def __contains__(self, key: object) -> bool:
        return key in self._cache
