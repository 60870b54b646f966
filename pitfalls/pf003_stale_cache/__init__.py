"""PF003 Stale cache after an update (guide: "Common Pitfalls and Solutions" › "Cache
Invalidation")."""

from pitfalls._evidence import Pitfall

PITFALL = Pitfall(
    id="PF003",
    title="Stale cache after an update",
    summary="A write that leaves the cached read alone: the old value is served until the TTL.",
    guide="Caching Pitfalls › Cache Invalidation",
)
