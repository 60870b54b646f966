"""Token revocation by `jti` in Redis, kept until the token would have expired anyway."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime

from redis.asyncio import Redis
from redis.exceptions import RedisError

from patterns.errors import ServiceUnavailableError
from patterns.observability.repeated_warning import RepeatedWarning
from patterns.security.jwt import Claims

PREFIX = "auth:revoked:"
logger = logging.getLogger("patterns.security.revocation")


class RevocationList:
    """Revoked token ids in Redis.

    When Redis cannot be reached, recording a revocation (logout, refresh rotation) always fails
    with a 503: the client must not believe it logged out. Checking is a policy: fail closed
    (503) or fail open (treat the token as not revoked, log a warning). Failing open keeps the
    API readable through a Redis outage at the cost of honouring a logged-out access token until
    it expires (30 minutes by default); the kit's settings choose it
    (`KIT_AUTH_REVOCATION_FAIL_OPEN`), and the docs record the trade-off. An outage fails every
    authenticated request's check: the warning is logged once per `warn_interval_s` with the
    count of those held back, not once per request.
    """

    def __init__(
        self,
        redis: Redis,
        *,
        fail_open: bool = False,
        warn_interval_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._redis = redis
        self._fail_open = fail_open
        self._skipped_warning = RepeatedWarning(logger, interval_s=warn_interval_s, clock=clock)

    async def revoke(self, *tokens: Claims) -> None:
        """Revoke tokens until they would have expired anyway: all of them or, when Redis
        fails, none (one MULTI/EXEC), so a failed logout leaves the client's session whole."""
        now = datetime.now(UTC)
        remaining = {c.jti: int((c.exp - now).total_seconds()) for c in tokens}
        alive = {jti: ttl for jti, ttl in remaining.items() if ttl > 0}  # the rest are dead
        if not alive:
            return
        try:
            async with self._redis.pipeline(transaction=True) as pipe:
                for jti, ttl in alive.items():
                    pipe.set(self.key(jti), "1", ex=ttl)
                await pipe.execute()
        except RedisError as exc:
            raise ServiceUnavailableError("Logout is unavailable right now.") from exc

    async def revoke_once(self, claims: Claims) -> bool:
        """Revoke and report whether this call did it (False: it was already revoked). Atomic
        (SET NX), so of two racing uses of one refresh token only one succeeds."""
        remaining = max(1, int((claims.exp - datetime.now(UTC)).total_seconds()))
        try:
            return bool(await self._redis.set(self.key(claims.jti), "1", ex=remaining, nx=True))
        except RedisError as exc:
            raise ServiceUnavailableError("Token refresh is unavailable right now.") from exc

    @staticmethod
    def key(jti: str) -> str:
        """The Redis key that marks `jti` revoked (for callers that batch the check)."""
        return PREFIX + jti

    async def is_revoked(self, jti: str) -> bool:
        try:
            return bool(await self._redis.exists(self.key(jti)))
        except RedisError as exc:
            return self.check_failed(exc)

    def check_failed(self, exc: RedisError) -> bool:
        """The policy when a check could not reach Redis: False (fail open, logged) or a 503."""
        if self._fail_open:
            self._skipped_warning.warn("revocation check skipped: Redis unavailable (%s)", exc)
            return False
        raise ServiceUnavailableError("Token checks are unavailable right now.") from exc
