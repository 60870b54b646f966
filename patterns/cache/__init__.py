"""Response caching for endpoints (guide: "Redis Caching", "Multi-Level Caching", "Cache
Warming", "Caching Pitfalls").

Use it inside the endpoint, where the inputs are known, instead of the guide's decorator (whose
key includes the database session, see `patterns.cache.keys`)::

    FEATURED = CacheSpec("items.featured", ttl=300, memory_ttl=5)

    @router.get("/featured")
    async def featured(db: SessionDep, cache: CacheDep, limit: int = 10) -> list[ItemOut]:
        return await cache.get_or_set(
            FEATURED, lambda: crud.item.featured(db, limit),
            parts={"limit": limit}, tags=["items"], model=list[ItemOut],
        )

    # in the write endpoint, after the change:
    cache.invalidate_on_commit(db, tags=["items"])

What it does and why:

* **Keys** are ``{prefix}:{namespace}:v{version}:{sha256 of canonical JSON}`` over every input
  that changes the answer, including the principal for per-user data (`CacheSpec.per_principal`
  makes it mandatory).
* **Values** are JSON: pydantic models through their serialiser (the guide `json.dumps` a model,
  which raises). Hits are re-validated into the given model, or returned as parsed JSON.
* **Invalidation** by key and by tag (a Redis set per tag, maintained atomically with the value),
  registered to run after the transaction commits (`invalidate_on_commit`), never on rollback.
* **Stampede protection**: one recomputation at a time per key. In a process, concurrent callers
  join one in-flight load (single flight). Across processes, the loader holds a Redis lock
  (`SET NX PX` with a random token, released by compare-and-delete in Lua, redis-py's `Lock`);
  the others poll for the value with exponential backoff for at most `wait_timeout`, take over
  if the lock disappears without a value (its holder died or failed), and compute themselves
  when the wait runs out. No loop is unbounded. `CacheSpec(lock=False)` leaves the
  cross-process lock out for answers few callers want at once (one user's own data).
* **Redis unreachable** (any `RedisError`): the answer is computed from the source and returned,
  never a 5xx; a warning is logged at most every `warn_interval` seconds, and reads skip Redis
  for `retry_after` seconds so an outage costs one timeout, not one per request.
* **Multi-level**: an optional bounded in-memory LRU with per-entry TTL in front of Redis,
  opted into per namespace with `CacheSpec.memory_ttl`. Cross-process invalidation is by that
  *short memory TTL*, not pub/sub: an invalidation drops the entry from Redis and from the
  invalidating process's memory at once, and other processes serve their copy for at most
  `memory_ttl` seconds more. Pub/sub was not chosen because its delivery is fire-and-forget (a
  subscriber that reconnects has missed messages, so a TTL bound is needed anyway) and it adds a
  listener task per process. The consequence: use the memory tier only where `memory_ttl`
  seconds of staleness after a write are acceptable (public listings), not for data a user
  expects to see change on their next read (a profile).
* **Parts**: `Cache` (`core`) composes the keys (`keys`), the values' encoding (`codec`), the
  memory tier (`memory`), single flight (`flight`), the cross-process lock (`lock`), tagged
  writes (`store`), the invalidation backlog (`backlog`) and warming (`warming`); its tunables
  are one `CacheSettings`.
* **Hits before routing**: `edge.MemoryHitMiddleware` answers a `GET` of a registered public
  path from the memory tier (`Cache.memory_hit`) without the router and the dependencies;
  `edge.PrincipalHitMiddleware` answers one principal's entry from Redis, after the checks the
  endpoint's dependencies make, in one round trip with the revocation check.
* **Warming**: `warm(entries)` computes and stores a list of `WarmEntry` ahead of traffic.
* **Counters**: `hits`/`misses` take a Prometheus counter with a `namespace` label or a
  callable; patterns stays free of the app's metrics module.

Known limit, as in every delete-on-write cache: a read that loaded the old row before a write
committed can store it after the write's invalidation; the TTL bounds how long that lasts.
"""

from patterns.cache.core import Cache, CounterLike
from patterns.cache.keys import CacheSpec, canonical_json, make_key
from patterns.cache.memory import MemoryTier
from patterns.cache.settings import CacheSettings
from patterns.cache.warming import WarmEntry, WarmReport

__all__ = [
    "Cache",
    "CacheSettings",
    "CacheSpec",
    "CounterLike",
    "MemoryTier",
    "WarmEntry",
    "WarmReport",
    "canonical_json",
    "make_key",
]
