"""Token revocation by `jti` in Redis, kept until the token would have expired anyway; and by
family (every token descended from one login), for a replayed refresh token."""

from __future__ import annotations

import enum
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


class Rotation(enum.Enum):
    """What `RevocationList.rotate` found."""

    ROTATED = "rotated"  # first use: issue the next pair
    RACED = "raced"  # used moments ago by the same client, most likely: refuse this use only
    REPLAYED = "replayed"  # used earlier: the family is revoked


def _timestamp(raw: object) -> float:
    """When a refresh token was used; a key written by `revoke` (logout) holds "1": long ago."""
    try:
        return float(raw)  # type: ignore[arg-type]  # bytes or str from GET
    except (TypeError, ValueError):
        return 0.0


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

    async def revoke(self, *tokens: Claims, family_ttl_s: int | None = None) -> None:
        """Revoke tokens until they would have expired anyway: all of them or, when Redis
        fails, none (one MULTI/EXEC), so a failed logout leaves the client's session whole.
        With `family_ttl_s` (the refresh tokens' lifetime), their families too: every token
        of the same login, including refresh tokens the caller did not present."""
        now = datetime.now(UTC)
        remaining = {c.jti: int((c.exp - now).total_seconds()) for c in tokens}
        alive = {jti: ttl for jti, ttl in remaining.items() if ttl > 0}  # the rest are dead
        families = {c.family for c in tokens if c.family} if family_ttl_s else set()
        if not (alive or families):
            return
        try:
            async with self._redis.pipeline(transaction=True) as pipe:
                for jti, ttl in alive.items():
                    pipe.set(self.key(jti), "1", ex=ttl)
                for family in families:
                    pipe.set(self.family_key(family), "1", ex=family_ttl_s)
                await pipe.execute()
        except RedisError as exc:
            raise ServiceUnavailableError("Logout is unavailable right now.") from exc

    async def rotate(self, claims: Claims, *, grace_s: float, family_ttl_s: int) -> Rotation:
        """Use a refresh token once (atomic SET NX GET: of racing uses exactly one rotates).

        A second use is a duplicate of the same client's request when it comes within
        `grace_s` of the first (a retry after a lost response, a double submit): refused, no
        more. Later, it is a replay: someone else holds the token, and whichever of the two
        rotated first got the next pair. Then the whole family is revoked (OAuth 2.0 Security
        Best Current Practice, refresh token rotation), so the thief's tokens die too and the
        user logs in again. `family_ttl_s` is the refresh tokens' lifetime: the newest token of
        the family expires within it.
        """
        now = time.time()
        remaining = max(1, int((claims.exp - datetime.now(UTC)).total_seconds()))
        try:
            used_at = await self._redis.set(
                self.key(claims.jti), f"{now:.3f}", ex=remaining, nx=True, get=True
            )
            if used_at is None:
                return Rotation.ROTATED
            if now - _timestamp(used_at) < grace_s:
                return Rotation.RACED
            if claims.family is not None:
                await self._redis.set(self.family_key(claims.family), "1", ex=family_ttl_s)
            return Rotation.REPLAYED
        except RedisError as exc:
            raise ServiceUnavailableError("Token refresh is unavailable right now.") from exc

    @staticmethod
    def key(jti: str) -> str:
        """The Redis key that marks `jti` revoked (for callers that batch the check)."""
        return PREFIX + jti

    @staticmethod
    def family_key(family: str) -> str:
        """The Redis key that marks every token of a login's family revoked."""
        return PREFIX + "family:" + family

    def keys(self, claims: Claims) -> list[str]:
        """The keys of which any one, if it exists, revokes this token (for batched checks:
        `EXISTS` with all of them, or an `MGET` in which any value is there)."""
        keys = [self.key(claims.jti)]
        if claims.family is not None:
            keys.append(self.family_key(claims.family))
        return keys

    async def is_family_revoked(self, family: str) -> bool:
        """Whether the login `family` was ended (a replay, a logout): checked before a rotation,
        which looks at the token's own use itself."""
        try:
            return bool(await self._redis.exists(self.family_key(family)))
        except RedisError as exc:
            return self.check_failed(exc)

    async def is_revoked(self, claims: Claims) -> bool:
        try:
            return bool(await self._redis.exists(*self.keys(claims)))
        except RedisError as exc:
            return self.check_failed(exc)

    def check_failed(self, exc: RedisError) -> bool:
        """The policy when a check could not reach Redis: False (fail open, logged) or a 503."""
        if self._fail_open:
            self._skipped_warning.warn("revocation check skipped: Redis unavailable (%s)", exc)
            return False
        raise ServiceUnavailableError("Token checks are unavailable right now.") from exc
