"""The response cache: read-through Redis with a memory tier, tags, stampede protection and a
database fallback (guide: "Redis Caching", "Multi-Level Caching", "Cache Warming",
"Caching Pitfalls"). The design is described in `patterns.cache`; each part lives in its own
module: keys (`keys`), values (`codec`), the memory tier (`memory`), single flight (`flight`),
the cross-process lock (`lock`) and the invalidation backlog (`backlog`)."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any, Protocol, TypeVar, cast, overload

from pydantic import TypeAdapter
from pydantic_core import to_json
from redis.asyncio import Redis
from redis.exceptions import RedisError
from sqlalchemy.ext.asyncio import AsyncSession

from patterns.cache.backlog import InvalidationBacklog
from patterns.cache.codec import AsJSON, Codec, adapter_for, decode, encode
from patterns.cache.flight import SingleFlight
from patterns.cache.keys import CacheSpec, make_key
from patterns.cache.lock import LoadLock
from patterns.cache.memory import MemoryTier
from patterns.cache.settings import CacheSettings
from patterns.cache.store import TaggedStore
from patterns.cache.warming import WarmEntry, WarmReport, warm
from patterns.db.session import on_commit
from patterns.observability.repeated_warning import RepeatedWarning

__all__ = ["Cache", "CacheSettings", "CounterLike", "WarmEntry", "WarmReport"]

logger = logging.getLogger("patterns.cache")

M = TypeVar("M")
Compute = Callable[[], Awaitable[Any]]


class _Incrementable(Protocol):
    def inc(self, amount: float = 1) -> None: ...


class _Labelled(Protocol):
    def labels(self, *labelvalues: Any, **labelkwargs: Any) -> _Incrementable: ...


CounterLike = _Labelled | Callable[[str], None]
"""A Prometheus counter with a `namespace` label, or a callable taking the namespace."""


class _RedisHealth:
    """After a Redis error, reads skip Redis for `retry_after` seconds (one timeout per outage,
    not one per request), and the warning is logged at most every `warn_interval` seconds."""

    def __init__(
        self, settings: CacheSettings, clock: Callable[[], float], signals: _Signals
    ) -> None:
        self._signals = signals
        self._retry_after = settings.retry_after
        self._clock = clock
        self._skip_until = float("-inf")
        self._warning = RepeatedWarning(logger, interval_s=settings.warn_interval, clock=clock)

    def usable(self) -> bool:
        return self._clock() >= self._skip_until

    def failed(self, exc: RedisError, *, writing: bool = False) -> None:
        self._skip_until = self._clock() + self._retry_after
        self._signals.event("redis_error", "")
        action = "an invalidation was deferred" if writing else "serving from the source"
        self._warning.warn("cache: Redis unavailable (%s: %s); %s", type(exc).__name__, exc, action)


class _Signals:
    """What a cache reports. `hits`/`misses`: counters (`CounterLike`); a hit is an answer
    served from memory or Redis, a miss one that was computed. `on_event(event, namespace)`:
    "hit", "miss", "join" (joined an in-process load), "lock_wait" (waiting for another
    process's load), "lock_timeout", "redis_error"; for tests and debugging."""

    def __init__(
        self,
        hits: CounterLike | None,
        misses: CounterLike | None,
        on_event: Callable[[str, str], None] | None,
    ) -> None:
        self._hits, self._misses, self._on_event = hits, misses, on_event

    def hit(self, spec: CacheSpec) -> None:
        _increment(self._hits, spec.namespace)
        self.event("hit", spec.namespace)

    def miss(self, spec: CacheSpec) -> None:
        _increment(self._misses, spec.namespace)
        self.event("miss", spec.namespace)

    def event(self, name: str, namespace: str) -> None:
        if self._on_event is not None:
            self._on_event(name, namespace)


class Cache:
    """Read-through cache for endpoint answers.

    `redis`: any `redis.asyncio.Redis` (bytes responses or decoded). `settings`: the tunables
    (`CacheSettings`). `hits`/`misses`/`on_event`: see `_Signals`. `clock`: monotonic
    seconds, for every time this cache reads (memory TTLs, lock waits, the retry window, the
    backlog's retries, warning rate limits).
    """

    def __init__(
        self,
        redis: Redis,
        settings: CacheSettings | None = None,
        *,
        hits: CounterLike | None = None,
        misses: CounterLike | None = None,
        clock: Callable[[], float] = time.monotonic,
        on_event: Callable[[str, str], None] | None = None,
    ) -> None:
        self.settings = settings = settings or CacheSettings()
        self.redis = redis
        self.prefix = settings.prefix
        self.memory = MemoryTier(settings.memory_maxsize, timer=clock)
        self._signals = _Signals(hits, misses, on_event)
        self._health = _RedisHealth(settings, clock, self._signals)
        self._flights = SingleFlight()
        self._locks = LoadLock(
            redis,
            settings,
            clock=clock,
            on_event=self._signals.event,
            on_redis_error=self._health.failed,
        )
        self._tagged = TaggedStore(redis, settings.prefix)
        # Invalidations Redis missed while down; `backlog.retry` is its background retry task.
        self.backlog = InvalidationBacklog(
            self._tagged.drop, retry_s=settings.unapplied_retry_s, clock=clock
        )

    def key(
        self, spec: CacheSpec, parts: Mapping[str, Any] | None = None, *, principal: Any = None
    ) -> str:
        return make_key(self.prefix, spec, parts, principal=principal)

    def tag_key(self, tag: str) -> str:
        return self._tagged.tag_key(tag)

    # --- reading ------------------------------------------------------------------------

    def memory_hit(
        self,
        spec: CacheSpec,
        parts: Mapping[str, Any] | None = None,
        *,
        principal: Any = None,
        key: str | None = None,
    ) -> bytes | None:
        """The stored bytes for these inputs when this process's memory tier holds them
        (counted as a hit), else None; never Redis, never a computation
        (`patterns.cache.edge`). `key`: `self.key(spec, parts, principal=...)`, when the caller
        keeps it for inputs that do not change."""
        if spec.memory_ttl is None:
            return None
        raw = self.memory.get(key or self.key(spec, parts, principal=principal))
        if raw is not None:
            self._signals.hit(spec)
        return raw

    def redis_readable(self) -> bool:
        """Whether a read outside `get_or_set` may go to Redis now (`patterns.cache.edge`): not
        within the retry window after a Redis error, and no invalidation waiting to be applied
        (the entry it drops could be read). When False, `get_or_set` is the way."""
        return self._health.usable() and not self.backlog

    def redis_failed(self, exc: RedisError) -> None:
        """A read outside `get_or_set` could not reach Redis: reads skip it for `retry_after`
        seconds, as after a failure of the cache's own."""
        self._health.failed(exc)

    def record_hit(self, spec: CacheSpec) -> None:
        """Count an answer served from Redis by a read outside `get_or_set`."""
        self._signals.hit(spec)

    @overload
    async def get_or_set(
        self,
        spec: CacheSpec,
        compute: Compute,
        *,
        model: type[M] | TypeAdapter[M],
        parts: Mapping[str, Any] | None = ...,
        principal: Any = ...,
        tags: Sequence[str] = ...,
    ) -> M: ...

    @overload
    async def get_or_set(
        self,
        spec: CacheSpec,
        compute: Compute,
        *,
        parts: Mapping[str, Any] | None = ...,
        principal: Any = ...,
        tags: Sequence[str] = ...,
        model: None = ...,
    ) -> Any: ...

    async def get_or_set(
        self,
        spec: CacheSpec,
        compute: Compute,
        *,
        parts: Mapping[str, Any] | None = None,
        principal: Any = None,
        tags: Sequence[str] = (),
        model: Any = None,
    ) -> Any:
        """The cached answer for these inputs, or `await compute()` stored for `spec.ttl`.

        With `model` the computed value is validated into it, stored as its JSON, and every hit
        is re-validated into it; without, the answer is parsed JSON on a miss as on a hit
        (`patterns.cache.codec`).
        """
        codec = adapter_for(model) if model is not None else None
        return await self._get_or_set(spec, compute, parts, principal, tags, codec)

    async def get_or_set_json(
        self,
        spec: CacheSpec,
        compute: Compute,
        *,
        model: Any,
        parts: Mapping[str, Any] | None = None,
        principal: Any = None,
        tags: Sequence[str] = (),
    ) -> bytes:
        """As `get_or_set` with `model`, but the answer is the model's JSON, bytes served as
        stored (no validation and serialisation per hit, docs/performance.md): return it as
        `Response(body, media_type="application/json")` with the model as the route's
        `response_model`. Keys and entries are shared with `get_or_set`."""
        codec = AsJSON(adapter_for(model))
        return cast(bytes, await self._get_or_set(spec, compute, parts, principal, tags, codec))

    async def _get_or_set(
        self,
        spec: CacheSpec,
        compute: Compute,
        parts: Mapping[str, Any] | None,
        principal: Any,
        tags: Sequence[str],
        codec: Codec,
    ) -> Any:
        key = self.key(spec, parts, principal=principal)
        if spec.memory_ttl is not None:
            raw = self.memory.get(key)
            if raw is not None:
                self._signals.hit(spec)
                return decode(raw, codec)
        raw = await self._flights.join(key, lambda: self._signals.event("join", spec.namespace))
        if raw is not None:
            self._signals.hit(spec)
            return decode(raw, codec)
        return await self._flights.lead(key, lambda: self._load(spec, key, compute, codec, tags))

    async def _load(
        self, spec: CacheSpec, key: str, compute: Compute, codec: Codec, tags: Sequence[str]
    ) -> tuple[bytes, Any]:
        """(stored bytes, value for the caller): from Redis, or computed under the key's lock."""
        if not self._health.usable():
            return await self._compute(spec, key, compute, codec, tags, store=False)
        try:
            await self.backlog.apply()
            if spec.lock:
                found, lock = await self._locks.find_or_lock(key, spec.namespace)
            else:
                found, lock = await self._locks.get(key), None
        except RedisError as exc:
            # Only Redis operations are guarded here: an error from `compute` itself propagates.
            self._health.failed(exc)
            return await self._compute(spec, key, compute, codec, tags, store=False)
        if found is not None:
            self._signals.hit(spec)
            if spec.memory_ttl is not None:
                self.memory.set(key, found, spec.memory_ttl)
            return found, decode(found, codec)
        try:
            return await self._compute(spec, key, compute, codec, tags, store=True)
        finally:
            if lock is not None:
                await self._locks.release(lock)

    async def _compute(
        self,
        spec: CacheSpec,
        key: str,
        compute: Compute,
        codec: Codec,
        tags: Sequence[str],
        *,
        store: bool,
    ) -> tuple[bytes, Any]:
        raw, value = encode(await compute(), codec)
        self._signals.miss(spec)
        if store:
            await self._save(spec, key, raw, tags)
        elif spec.memory_ttl is not None:
            self.memory.set(key, raw, spec.memory_ttl)
        return raw, value

    # --- writing ------------------------------------------------------------------------

    async def set(
        self,
        spec: CacheSpec,
        value: Any,
        *,
        model: Any = None,
        parts: Mapping[str, Any] | None = None,
        principal: Any = None,
        tags: Sequence[str] = (),
    ) -> bool:
        """Store `value` for these inputs (overwriting), serialised as in `get_or_set`.
        False when Redis did not take it (the memory tier still did, if the spec uses one)."""
        raw = encode(value, adapter_for(model))[0] if model is not None else to_json(value)
        return await self._save(spec, self.key(spec, parts, principal=principal), raw, tags)

    async def _save(self, spec: CacheSpec, key: str, raw: bytes, tags: Sequence[str]) -> bool:
        if spec.memory_ttl is not None:
            self.memory.set(key, raw, spec.memory_ttl)
        try:
            await self._tagged.set(key, raw, spec.ttl_ms, tags)
        except RedisError as exc:
            self._health.failed(exc)
            return False
        return True

    async def warm(self, entries: Iterable[WarmEntry]) -> WarmReport:
        """Compute and store each entry now (`patterns.cache.warming`)."""
        return await warm(self, entries)

    # --- invalidation -------------------------------------------------------------------

    async def invalidate(self, *keys: str) -> None:
        """Drop these keys from Redis and from this process's memory tier. If Redis is down,
        they are dropped before this process's next read from Redis (`backlog`)."""
        self.memory.discard(keys)
        if not keys:
            return
        try:
            await self.redis.delete(*keys)
        except RedisError as exc:
            self.backlog.remember(keys, ())
            self._health.failed(exc, writing=True)

    async def invalidate_tags(self, *tags: str) -> None:
        """Drop every entry stored with any of these tags (later, as `invalidate`, if Redis is
        down)."""
        if not tags:
            return
        try:
            deleted = await self._tagged.delete_tags(tags)
        except RedisError as exc:
            # Which memory entries carry the tags is known only to Redis: drop them all.
            self.memory.clear()
            self.backlog.remember((), tags)
            self._health.failed(exc, writing=True)
            return
        self.memory.discard(deleted)

    def invalidate_on_commit(
        self, session: AsyncSession, *, keys: Sequence[str] = (), tags: Sequence[str] = ()
    ) -> None:
        """Invalidate after `session`'s transaction commits, and not at all on rollback.

        Invalidating before the commit lets a concurrent read cache the old row again before
        the new one is visible; invalidating on rollback drops good entries.
        """
        keys, tags = tuple(keys), tuple(tags)

        async def _invalidate() -> None:
            await self.invalidate(*keys)
            await self.invalidate_tags(*tags)

        on_commit(session, _invalidate)

    def close(self) -> None:
        """Stop the background retry of missed invalidations (at shutdown)."""
        self.backlog.close()


def _increment(counter: CounterLike | None, namespace: str) -> None:
    if counter is None:
        return
    labels = getattr(counter, "labels", None)
    if labels is not None:
        labels(namespace=namespace).inc()
    else:
        counter(namespace)  # type: ignore[operator]
