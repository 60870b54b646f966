"""Values and tags in Redis (guide: "Redis Caching": cache invalidation by tag).

A tag is a Redis set of the keys stored with it. A value and its tags are written by one Lua
script, so no reader sees a value whose tags are not registered yet; invalidating a tag deletes
its members and the set in one script too.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from redis.asyncio import Redis

from patterns.cache.codec import as_bytes

__all__ = ["TaggedStore"]

# Sets the value and adds the key to each tag set; a tag set lives as long as its longest-lived
# member (PTTL -1: no expiry yet; PTTL < ttl: extend).
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


class TaggedStore:
    """Redis writes of one cache: every method raises RedisError when Redis does not answer."""

    def __init__(self, redis: Redis, prefix: str) -> None:
        self._redis = redis
        self._prefix = prefix
        self._set_script = redis.register_script(_SET_WITH_TAGS)
        self._invalidate_script = redis.register_script(_INVALIDATE_TAGS)

    def tag_key(self, tag: str) -> str:
        return f"{self._prefix}:tag:{tag}"

    async def set(self, key: str, raw: bytes, ttl_ms: int, tags: Sequence[str]) -> None:
        await self._set_script(keys=[key, *(self.tag_key(t) for t in tags)], args=[raw, ttl_ms])

    async def delete_tags(self, tags: Iterable[str]) -> list[str]:
        """Delete every key stored with any of `tags`; the keys deleted."""
        deleted = await self._invalidate_script(keys=[self.tag_key(t) for t in tags])
        return [as_bytes(k).decode() for k in deleted]

    async def drop(self, keys: Sequence[str], tags: Sequence[str]) -> None:
        """Delete these keys and everything stored with these tags."""
        if keys:
            await self._redis.delete(*keys)
        if tags:
            await self.delete_tags(tags)
