"""The response cache: read-through Redis with a memory tier, tags, stampede protection and a
database fallback (guide: "Redis Caching", "Multi-Level Caching", "Cache Warming",
"Caching Pitfalls"). The design is described in `patterns.cache`."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Protocol, TypeVar, cast, overload

from pydantic import TypeAdapter
from pydantic_core import to_json
from redis.asyncio import Redis
from redis.asyncio.lock import Lock
from redis.exceptions import LockError, RedisError
from sqlalchemy.ext.asyncio import AsyncSession

from patterns.cache.keys import CacheSpec, make_key
from patterns.cache.memory import MemoryTier
from patterns.db.session import on_commit
from patterns.observability.repeated_warning import RepeatedWarning

__all__ = ["Cache", "CounterLike", "WarmEntry", "WarmReport"]

logger = logging.getLogger("patterns.cache")

M = TypeVar("M")
Compute = Callable[[], Awaitable[Any]]

# Sets the value and adds the key to each tag set; a tag set lives as long as its longest-lived
# member (PTTL -1: no expiry yet; PTTL < ttl: extend). Atomic, so no reader sees a value whose
# tags are not registered yet.
_SET_WITH_TAGS = """
local ttl = tonumber(ARGV[2])
redis.call('SET', KEYS[1], ARGV[1], 'PX', ttl)
for i = 2, #KEYS do
  redis.call('SADD', KEYS[i], KEYS[1])
  local left = redis.call('PTTL', KEYS[i])
  if left == -1 or (left >= 0 and left < ttl) then
    redis.call('PEXPIRE', KEYS[i], ttl)
  end
end
return 1
"""

# Deletes every member of the tag sets and the sets; returns the deleted keys so the memory tier
# can drop them too.
_INVALIDATE_TAGS = """
local out = {}
for i = 1, #KEYS do
  local members = redis.call('SMEMBERS', KEYS[i])
  for _, key in ipairs(members) do
    redis.call('DEL', key)
    out[#out + 1] = key
  end
  redis.call('DEL', KEYS[i])
end
return out
"""


class _Incrementable(Protocol):
    def inc(self, amount: float = 1) -> None: ...


class _Labelled(Protocol):
    def labels(self, *labelvalues: Any, **labelkwargs: Any) -> _Incrementable: ...


CounterLike = _Labelled | Callable[[str], None]
"""A Prometheus counter with a `namespace` label, or a callable taking the namespace."""


@dataclass(frozen=True)
class WarmEntry:
    """One answer to compute and store ahead of requests (`Cache.warm`)."""

    spec: CacheSpec
    compute: Compute
    parts: Mapping[str, Any] | None = None
    principal: Any = None
    tags: Sequence[str] = ()
    model: Any = None


@dataclass(frozen=True)
class WarmReport:
    warmed: int
    failed: int


@lru_cache(maxsize=256)
def _adapter(model: Any) -> TypeAdapter[Any]:
    # Building a TypeAdapter compiles a validator; do it once per type.
    return model if isinstance(model, TypeAdapter) else TypeAdapter(model)


@dataclass(frozen=True)
class _AsJSON:
    """For `get_or_set_json`: validate and serialise a computed value through `adapter`, and
    hand every caller the JSON bytes (as stored) instead of a value."""

    adapter: TypeAdapter[Any]


_Codec = TypeAdapter[Any] | _AsJSON | None


class Cache:
    """Read-through cache for endpoint answers.

    `redis`: any `redis.asyncio.Redis` (bytes responses or decoded). `prefix`: the first key
    segment, shared by every namespace of one application. `hits`/`misses`: counters (see
    `CounterLike`); a hit is an answer served from memory or Redis, a miss one that was
    computed. `lock_ttl`: how long a recomputation may hold a key's lock before another process
    may take over. `wait_timeout`: how long a caller waits for another process's recomputation
    before computing itself. `retry_after`: after a Redis error, reads skip Redis for this many
    seconds (so an outage costs one timeout, not one per request). `unapplied_retry_s`: how
    often invalidations Redis missed are retried in the background (`unapplied_retry` is that
    task, while one runs). `clock`: monotonic seconds,
    for the memory tier, the retry window and warning rate limits. `on_event`: called with
    (event, namespace) for "hit", "miss", "join" (joined an in-process load), "lock_wait"
    (waiting for another process's load), "lock_timeout", "redis_error"; meant for tests and
    debugging.
    """

    def __init__(
        self,
        redis: Redis,
        *,
        prefix: str = "cache",
        memory_maxsize: int = 1024,
        hits: CounterLike | None = None,
        misses: CounterLike | None = None,
        lock_ttl: float = 10.0,
        wait_timeout: float = 5.0,
        poll_interval: float = 0.005,
        max_poll_interval: float = 0.1,
        retry_after: float = 1.0,
        unapplied_retry_s: float = 1.0,
        warn_interval: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
        on_event: Callable[[str, str], None] | None = None,
    ) -> None:
        if not (0 < poll_interval <= max_poll_interval and lock_ttl > 0 and wait_timeout >= 0):
            raise ValueError("intervals and timeouts must be positive")
        self.redis = redis
        self.prefix = prefix
        self.memory = MemoryTier(memory_maxsize, timer=clock)
        self._hits = hits
        self._misses = misses
        self.lock_ttl = lock_ttl
        self.wait_timeout = wait_timeout
        self._poll = (poll_interval, max_poll_interval)
        self._retry_after = retry_after
        self._clock = clock
        self._on_event = on_event
        # key → the in-process load that concurrent callers join (single flight)
        self._flights: dict[str, asyncio.Future[bytes]] = {}
        self._skip_redis_until = float("-inf")
        # Invalidations Redis did not take (it was down): applied before this process next
        # reads from Redis, so an entry that outlived its invalidation is not served again
        # for the rest of its TTL (a partition or a paused server keeps its data).
        self._unapplied_keys: set[str] = set()
        self._unapplied_tags: set[str] = set()
        # Retries them in the background too: other processes read Redis directly and would
        # serve the old entry until this process happened to read.
        self.unapplied_retry: asyncio.Task[None] | None = None
        self._unapplied_retry_s = unapplied_retry_s
        self._warning = RepeatedWarning(logger, interval_s=warn_interval, clock=clock)
        self._set_script = redis.register_script(_SET_WITH_TAGS)
        self._invalidate_script = redis.register_script(_INVALIDATE_TAGS)

    # --- keys ---------------------------------------------------------------------------

    def key(
        self, spec: CacheSpec, parts: Mapping[str, Any] | None = None, *, principal: Any = None
    ) -> str:
        return make_key(self.prefix, spec, parts, principal=principal)

    def tag_key(self, tag: str) -> str:
        return f"{self.prefix}:tag:{tag}"

    # --- reading ------------------------------------------------------------------------

    @overload
    async def get_or_set(
        self,
        spec: CacheSpec,
        compute: Compute,
        *,
        parts: Mapping[str, Any] | None = ...,
        principal: Any = ...,
        tags: Sequence[str] = ...,
        model: type[M] | TypeAdapter[M],
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

        With `model` (a pydantic model, or a TypeAdapter/type such as `list[ItemOut]`) the
        computed value is validated into it (ORM objects are read by attribute), stored as its
        JSON, and every hit is re-validated into it. Without, the value is stored with pydantic's
        JSON encoder and returned as parsed JSON, on a miss as on a hit, so a caller never sees
        one shape when computing and another when served from the cache.
        """
        return await self._get_or_set(
            spec,
            compute,
            parts=parts,
            principal=principal,
            tags=tags,
            codec=_adapter(model) if model is not None else None,
        )

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
        """As `get_or_set` with `model`, but the answer is the model's JSON, bytes ready for a
        response body: a hit is served as stored, without validating it into the model and
        serialising it again (docs/performance.md).
        Return it as `Response(body, media_type="application/json")` and declare the model
        as the route's `response_model` for the schema. Keys and entries are shared with
        `get_or_set` for the same spec and inputs."""
        codec = _AsJSON(_adapter(model))
        body = await self._get_or_set(
            spec, compute, parts=parts, principal=principal, tags=tags, codec=codec
        )
        return cast(bytes, body)

    async def _get_or_set(
        self,
        spec: CacheSpec,
        compute: Compute,
        *,
        parts: Mapping[str, Any] | None,
        principal: Any,
        tags: Sequence[str],
        codec: _Codec,
    ) -> Any:
        key = self.key(spec, parts, principal=principal)
        adapter = codec
        if spec.memory_ttl is not None:
            raw = self.memory.get(key)
            if raw is not None:
                self._count_hit(spec)
                return self._decode(raw, adapter)
        # A second round only when the load this caller joined was cancelled (its caller went
        # away): the first to resume leads a new load and the others join that.
        for _ in range(2):
            flight = self._flights.get(key)
            if flight is None:
                break
            self._event("join", spec)
            try:
                raw = await asyncio.shield(flight)
            except asyncio.CancelledError:
                if not flight.cancelled():
                    raise  # this caller was cancelled, not the load it joined
                continue
            self._count_hit(spec)
            return self._decode(raw, adapter)
        return await self._lead(spec, key, compute, adapter, tags)

    async def _lead(
        self,
        spec: CacheSpec,
        key: str,
        compute: Compute,
        adapter: _Codec,
        tags: Sequence[str],
    ) -> Any:
        flight: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self._flights[key] = flight
        try:
            raw, value = await self._load(spec, key, compute, adapter, tags)
        except BaseException as exc:
            if isinstance(exc, Exception):
                flight.set_exception(exc)
                flight.exception()  # mark it retrieved: there may be no joiners
            else:
                flight.cancel()
            raise
        else:
            flight.set_result(raw)
            return value
        finally:
            if self._flights.get(key) is flight:
                del self._flights[key]

    async def _load(
        self,
        spec: CacheSpec,
        key: str,
        compute: Compute,
        adapter: _Codec,
        tags: Sequence[str],
    ) -> tuple[bytes, Any]:
        """(stored bytes, value for the caller): from Redis, or computed under the key's lock."""
        if not self._redis_usable():
            return await self._compute(spec, key, compute, adapter, tags, store=False)
        try:
            await self._apply_unapplied()
            found, lock = await self._find_or_lock(spec, key)
        except RedisError as exc:
            # Only Redis operations are guarded here: an error from `compute` itself propagates.
            self._redis_failed(exc)
            return await self._compute(spec, key, compute, adapter, tags, store=False)
        if found is not None:
            return self._served(spec, key, found, adapter)
        try:
            return await self._compute(spec, key, compute, adapter, tags, store=True)
        finally:
            if lock is not None:
                await self._release(lock)

    async def _find_or_lock(self, spec: CacheSpec, key: str) -> tuple[bytes | None, Lock | None]:
        """The stored value; or None and the key's lock (this caller computes); or None and no
        lock (the wait for another process ran out: compute anyway)."""
        if not spec.lock:
            return await self._redis_get(key), None
        deadline = asyncio.get_running_loop().time() + self.wait_timeout
        # A second round only after a lock holder vanished without storing a value.
        for _ in range(2):
            raw = await self._redis_get(key)
            if raw is not None:
                return raw, None
            lock = self.redis.lock(
                f"{key}:lock", timeout=self.lock_ttl, blocking=False, thread_local=False
            )
            if await lock.acquire():
                # The previous holder may have stored the value between our GET and our lock.
                raw = await self._redis_get(key)
                if raw is not None:
                    await self._release(lock)
                    return raw, None
                return None, lock
            outcome = await self._wait_for_value(spec, key, deadline)
            if isinstance(outcome, bytes):
                return outcome, None
            if outcome == "timeout":
                break
        self._event("lock_timeout", spec)
        return None, None

    async def _wait_for_value(self, spec: CacheSpec, key: str, deadline: float) -> bytes | str:
        """Poll with backoff until the value appears ("vanished": the lock is gone without a
        value; "timeout": the deadline passed). Bounded by `wait_timeout`."""
        self._event("lock_wait", spec)
        loop = asyncio.get_running_loop()
        delay, max_delay = self._poll
        while loop.time() < deadline:
            await asyncio.sleep(min(delay, max(0.0, deadline - loop.time())))
            async with self.redis.pipeline(transaction=False) as pipe:
                pipe.get(key)
                pipe.exists(f"{key}:lock")
                raw, locked = await pipe.execute()
            if raw is not None:
                return _as_bytes(raw)
            if not locked:
                return "vanished"
            delay = min(delay * 2, max_delay)
        return "timeout"

    async def _release(self, lock: Lock) -> None:
        try:
            await lock.release()
        except LockError:
            # Our lock expired (the computation outlived lock_ttl) and may now be someone
            # else's; the compare-and-delete release left theirs alone.
            logger.warning("cache lock %s expired before release", lock.name)
        except RedisError as exc:
            self._redis_failed(exc)

    async def _compute(
        self,
        spec: CacheSpec,
        key: str,
        compute: Compute,
        adapter: _Codec,
        tags: Sequence[str],
        *,
        store: bool,
    ) -> tuple[bytes, Any]:
        result = await compute()
        if isinstance(adapter, _AsJSON):
            raw = adapter.adapter.dump_json(
                adapter.adapter.validate_python(result, from_attributes=True)
            )
            value: Any = raw
        elif adapter is not None:
            value = adapter.validate_python(result, from_attributes=True)
            raw = adapter.dump_json(value)
        else:
            raw = to_json(result)
            value = json.loads(raw)
        self._count_miss(spec)
        if store:
            await self._store(spec, key, raw, tags)
        elif spec.memory_ttl is not None:
            self.memory.set(key, raw, spec.memory_ttl)
        return raw, value

    def _served(self, spec: CacheSpec, key: str, raw: bytes, adapter: _Codec) -> tuple[bytes, Any]:
        self._count_hit(spec)
        if spec.memory_ttl is not None:
            self.memory.set(key, raw, spec.memory_ttl)
        return raw, self._decode(raw, adapter)

    @staticmethod
    def _decode(raw: bytes, adapter: _Codec) -> Any:
        if isinstance(adapter, _AsJSON):
            return raw
        return adapter.validate_json(raw) if adapter is not None else json.loads(raw)

    async def _redis_get(self, key: str) -> bytes | None:
        raw = await self.redis.get(key)
        return None if raw is None else _as_bytes(raw)

    # --- writing ------------------------------------------------------------------------

    async def set(
        self,
        spec: CacheSpec,
        value: Any,
        *,
        parts: Mapping[str, Any] | None = None,
        principal: Any = None,
        tags: Sequence[str] = (),
        model: Any = None,
    ) -> bool:
        """Store `value` for these inputs (overwriting), serialised as in `get_or_set`.
        False when Redis did not take it (the memory tier still did, if the spec uses one)."""
        key = self.key(spec, parts, principal=principal)
        if model is not None:
            adapter = _adapter(model)
            raw = adapter.dump_json(adapter.validate_python(value, from_attributes=True))
        else:
            raw = to_json(value)
        return await self._store(spec, key, raw, tags)

    async def _store(self, spec: CacheSpec, key: str, raw: bytes, tags: Sequence[str]) -> bool:
        if spec.memory_ttl is not None:
            self.memory.set(key, raw, spec.memory_ttl)
        try:
            await self._set_script(
                keys=[key, *(self.tag_key(t) for t in tags)], args=[raw, spec.ttl_ms]
            )
        except RedisError as exc:
            self._redis_failed(exc)
            return False
        return True

    async def warm(self, entries: Iterable[WarmEntry]) -> WarmReport:
        """Compute and store each entry now (overwriting), one after another so warming does
        not flood the database. A failing entry is logged and the others still run."""
        warmed = failed = 0
        for entry in entries:
            try:
                value = await entry.compute()
                stored = await self.set(
                    entry.spec,
                    value,
                    parts=entry.parts,
                    principal=entry.principal,
                    tags=entry.tags,
                    model=entry.model,
                )
            except Exception:
                stored = False
                logger.exception("cache warm-up of %s failed", entry.spec.namespace)
            if stored:
                warmed += 1
            else:
                failed += 1
        return WarmReport(warmed=warmed, failed=failed)

    # --- invalidation -------------------------------------------------------------------

    async def invalidate(self, *keys: str) -> None:
        """Drop these keys from Redis and from this process's memory tier. If Redis is down,
        they are dropped before this process's next read from Redis."""
        self.memory.discard(keys)
        if not keys:
            return
        try:
            await self.redis.delete(*keys)
        except RedisError as exc:
            self._remember_unapplied(keys, ())
            self._redis_failed(exc, writing=True)

    async def invalidate_tags(self, *tags: str) -> None:
        """Drop every entry stored with any of these tags (later, as `invalidate`, if Redis is
        down)."""
        if not tags:
            return
        try:
            deleted = await self._invalidate_script(keys=[self.tag_key(t) for t in tags])
        except RedisError as exc:
            # Which memory entries carry the tags is known only to Redis: drop them all.
            self.memory.clear()
            self._remember_unapplied((), tags)
            self._redis_failed(exc, writing=True)
            return
        self.memory.discard(_as_bytes(k).decode() for k in deleted)

    def _remember_unapplied(self, keys: Iterable[str], tags: Iterable[str]) -> None:
        self._unapplied_keys.update(keys)
        self._unapplied_tags.update(tags)
        if len(self._unapplied_keys) + len(self._unapplied_tags) > _MAX_UNAPPLIED:
            # A long outage under heavy writes: stop growing, say so. What is kept is still
            # applied; the rest is bounded by the entries' TTLs.
            logger.error("cache: too many invalidations waiting for Redis; dropping them")
            self._unapplied_keys.clear()
            self._unapplied_tags.clear()
        if self.unapplied_retry is None or self.unapplied_retry.done():
            try:
                self.unapplied_retry = asyncio.get_running_loop().create_task(
                    self._retry_unapplied()
                )
            except RuntimeError:  # no loop (a sync caller): the next read applies them
                self.unapplied_retry = None

    async def _retry_unapplied(self) -> None:
        """Every `unapplied_retry_s` until Redis takes the missed invalidations: staleness after
        an outage is bounded by about that, in every process, not by the entries' TTL."""
        deadline = time.monotonic() + _UNAPPLIED_RETRY_FOR_S
        while (self._unapplied_keys or self._unapplied_tags) and time.monotonic() < deadline:
            await asyncio.sleep(self._unapplied_retry_s)
            try:
                await self._apply_unapplied()
            except RedisError:
                continue

    def close(self) -> None:
        """Stop the background retry (at shutdown); what it had not applied is lost with the
        process, as it would be in a crash, and bounded by the entries' TTLs."""
        if self.unapplied_retry is not None:
            self.unapplied_retry.cancel()

    async def _apply_unapplied(self) -> None:
        """Apply what `invalidate`/`invalidate_tags` could not; raises RedisError if still down
        (and keeps it)."""
        if not (self._unapplied_keys or self._unapplied_tags):
            return
        keys, tags = list(self._unapplied_keys), list(self._unapplied_tags)
        if keys:
            await self.redis.delete(*keys)
        if tags:
            await self._invalidate_script(keys=[self.tag_key(t) for t in tags])
        self._unapplied_keys.difference_update(keys)
        self._unapplied_tags.difference_update(tags)
        logger.info(
            "cache: applied %d invalidations that had waited for Redis", len(keys) + len(tags)
        )

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

    # --- health, counters ---------------------------------------------------------------

    def _redis_usable(self) -> bool:
        return self._clock() >= self._skip_redis_until

    def _redis_failed(self, exc: RedisError, *, writing: bool = False) -> None:
        self._skip_redis_until = self._clock() + self._retry_after
        self._event("redis_error", "")
        action = "an invalidation was deferred" if writing else "serving from the source"
        self._warning.warn("cache: Redis unavailable (%s: %s); %s", type(exc).__name__, exc, action)

    def _count_hit(self, spec: CacheSpec) -> None:
        _increment(self._hits, spec.namespace)
        self._event("hit", spec)

    def _count_miss(self, spec: CacheSpec) -> None:
        _increment(self._misses, spec.namespace)
        self._event("miss", spec)

    def _event(self, name: str, spec: CacheSpec | str) -> None:
        if self._on_event is not None:
            self._on_event(name, spec.namespace if isinstance(spec, CacheSpec) else spec)


_MAX_UNAPPLIED = 10_000
_UNAPPLIED_RETRY_FOR_S = 600.0  # after that, the next read from Redis applies them


def _increment(counter: CounterLike | None, namespace: str) -> None:
    if counter is None:
        return
    labels = getattr(counter, "labels", None)
    if labels is not None:
        labels(namespace=namespace).inc()
    else:
        counter(namespace)  # type: ignore[operator]


def _as_bytes(raw: bytes | str) -> bytes:
    return raw.encode() if isinstance(raw, str) else raw
