"""Token revocation by `jti` in Redis, kept until the token would have expired anyway."""

from __future__ import annotations

from datetime import UTC, datetime

from redis.asyncio import Redis
from redis.exceptions import RedisError

from patterns.errors import ServiceUnavailableError
from patterns.security.jwt import Claims

PREFIX = "auth:revoked:"


class RevocationList:
    """Fails closed: if Redis cannot say whether a token was revoked, the request gets a 503,
    never a silent pass for a token that may have been logged out."""

    def __init__(self, redis: Redis) -> None:
        self._redis = redis

    async def revoke(self, claims: Claims) -> None:
        remaining = int((claims.exp - datetime.now(UTC)).total_seconds())
        if remaining <= 0:
            return  # already dead
        try:
            await self._redis.set(PREFIX + claims.jti, "1", ex=remaining)
        except RedisError as exc:
            raise ServiceUnavailableError("Logout is unavailable right now.") from exc

    async def revoke_once(self, claims: Claims) -> bool:
        """Revoke and report whether this call did it (False: it was already revoked). Atomic
        (SET NX), so of two racing uses of one refresh token only one succeeds."""
        remaining = max(1, int((claims.exp - datetime.now(UTC)).total_seconds()))
        try:
            return bool(await self._redis.set(PREFIX + claims.jti, "1", ex=remaining, nx=True))
        except RedisError as exc:
            raise ServiceUnavailableError("Token refresh is unavailable right now.") from exc

    async def is_revoked(self, jti: str) -> bool:
        try:
            return bool(await self._redis.exists(PREFIX + jti))
        except RedisError as exc:
            raise ServiceUnavailableError("Token checks are unavailable right now.") from exc
