"""The app's response cache (guide: "Redis Caching", "Multi-Level Caching", "Cache Warming").

Two cached answers: the featured items (public; a 5-second memory tier in front of Redis, so a
write elsewhere shows within 5 s in every worker and at once in the writing one) and each user's
profile (per principal, Redis only, so a user always sees their own change on the next read).
"""

from __future__ import annotations

from redis.asyncio import Redis

from patterns.cache import Cache, CacheSettings, CacheSpec
from patterns.cache.edge import EdgeEntry
from reference_app.core.metrics import CACHE_HITS, CACHE_MISSES

FEATURED = CacheSpec("items.featured", ttl=300, memory_ttl=5)
# One user's own data: rarely asked for by two processes at once, and dropped after every order
# (a new activity), so the stampede lock's round trips would cost more than they save.
PROFILE = CacheSpec("users.profile", ttl=300, per_principal=True, lock=False)
FEATURED_TAG = "items.featured"
FEATURED_LIMIT = 10


def user_tag(user_id: int) -> str:
    """Every cached answer about one user carries this tag."""
    return f"user:{user_id}"


def make_cache(redis: Redis) -> Cache:
    return Cache(redis, CacheSettings(prefix="kit"), hits=CACHE_HITS, misses=CACHE_MISSES)


def edge_entries(api_prefix: str) -> dict[str, EdgeEntry]:
    """The answers served from the memory tier before routing (`patterns.cache.edge`): the
    featured items, with the key parts their endpoint uses."""
    return {f"{api_prefix}/items/featured": EdgeEntry(FEATURED, {"limit": FEATURED_LIMIT})}


def principal_edge_entries(api_prefix: str) -> dict[str, EdgeEntry]:
    """The per-user answers served from Redis before routing (`patterns.cache.edge`): the
    profile, whose endpoint does nothing else on a hit."""
    return {f"{api_prefix}/users/profile": EdgeEntry(PROFILE)}
