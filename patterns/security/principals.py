"""Who a token's subject is, cached briefly in Redis (guide: "Dependency Injection",
"JWT Authentication").

The guide loads the user from the database on every authenticated request. That is a
transaction (BEGIN, SELECT, COMMIT: three round trips) even when the rest of the answer comes
from a cache, and under load it is the largest share of a cached read's cost
(docs/performance.md). Here the authentication dependency asks Redis two things in one round
trip: is the token's `jti` revoked, and is a snapshot of its subject cached. Only a miss reads
the database, and the snapshot is stored for `ttl` seconds.

Freshness: the app calls `forget` after every committed change to a subject, so deactivation,
a role change or deletion takes effect on the next request. `forget` leaves a short-lived
tombstone rather than deleting, and `store` writes only where no entry exists (`SET NX`): a
request that read the row just before the change committed cannot put the old snapshot back
afterwards, which a plain delete would allow. A change made behind the app's back (SQL by hand)
shows within `ttl` seconds; keep `ttl` short. When Redis cannot be reached the snapshot is
simply missed (the database answers) and the revocation check follows `RevocationList`'s
policy.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ValidationError
from redis.asyncio import Redis
from redis.exceptions import RedisError

from patterns.security.jwt import Claims
from patterns.security.revocation import RevocationList

logger = logging.getLogger("patterns.security.principals")

PREFIX = "auth:principal:"
TOMBSTONE = b"-"
P = TypeVar("P", bound=BaseModel)


class PrincipalCache(Generic[P]):
    """Snapshots of token subjects as the JSON of a pydantic model `P`."""

    def __init__(
        self,
        redis: Redis,
        revocations: RevocationList,
        model: type[P],
        *,
        ttl: int = 60,
        version: int = 1,
        tombstone_ttl: int = 10,
        mget: Callable[[list[str]], Awaitable[list[Any]]] | None = None,
    ) -> None:
        if ttl < 1:
            raise ValueError("ttl must be at least 1 second")
        self._redis = redis
        # How lookups read Redis: the client's MGET, or one that shares a round trip with
        # concurrent lookups (`patterns.cache.batching.MgetBatcher.mget`).
        self._mget = mget or redis.mget
        self._model = model
        # Longer than a database read of the subject takes, however slow: a reader that started
        # before the change and stores after it finds the tombstone and stores nothing.
        self._tombstone_ttl = tombstone_ttl
        self._revocations = revocations
        self.ttl = ttl
        # Part of the key: bump it when the snapshot's shape changes, and old entries are
        # ignored instead of failing to parse.
        self._prefix = f"{PREFIX}v{version}:"

    def key(self, subject: str) -> str:
        return self._prefix + subject

    async def lookup(self, claims: Claims, subject: str) -> tuple[bool, P | None]:
        """(revoked, cached snapshot of `subject` or None), in one round trip. `subject` is the
        canonical form of `claims.sub`, as `store` and `forget` are called with. Redis
        unreachable: the revocation policy decides the first (False or a 503) and the snapshot
        is missed; a tombstone, or a snapshot that no longer parses, is missed too."""
        try:
            revoked, snapshot, _ = await self.lookup_with(claims, subject, ())
        except RedisError as exc:
            return self._revocations.check_failed(exc), None
        return revoked, snapshot

    async def lookup_with(
        self, claims: Claims, subject: str, keys: Sequence[str]
    ) -> tuple[bool, P | None, list[bytes | str | None]]:
        """As `lookup`, and the values of `keys` in the same round trip, for a caller that
        answers from them when the token and its subject pass (a cached answer about the
        subject, `patterns.cache.edge`). A Redis error is raised, not decided by the revocation
        policy: such a caller falls back to a path that applies it.

        One `MGET`, the cheapest round trip redis-py makes (a pipeline of `EXISTS` and `GET`s
        costs about a fifth more client CPU): a revocation key is a string written by
        `RevocationList`, so it has a value exactly when `EXISTS` counts it."""
        revocation_keys = self._revocations.keys(claims)
        values = await self._mget([*revocation_keys, self.key(subject), *keys])
        n = len(revocation_keys)
        revoked = any(v is not None for v in values[:n])
        return revoked, self._parse(values[n]), values[n + 1 :]

    def _parse(self, raw: bytes | str | None) -> P | None:
        """A snapshot; None for a miss, a tombstone, or a snapshot that no longer parses."""
        if raw is None or raw in (TOMBSTONE, TOMBSTONE.decode()):
            return None
        try:
            return self._model.model_validate_json(raw)
        except ValidationError:
            return None

    async def store(self, subject: str, snapshot: P) -> None:
        """Cache a snapshot read from the database, unless an entry exists (a tombstone left by
        a change, or another reader's snapshot). A failure only costs the next request a
        database read, so it is logged at debug level and not raised."""
        try:
            await self._redis.set(
                self.key(subject), snapshot.model_dump_json(), ex=self.ttl, nx=True
            )
        except RedisError as exc:
            logger.debug("principal snapshot not stored: %s", exc)

    async def forget(self, subjects: Iterable[str]) -> None:
        """Replace the snapshots of `subjects` with tombstones (after a committed change to
        them): the next requests read the database, and no snapshot read before the change can
        be stored for `tombstone_ttl` seconds. A failure is logged as a warning: the stale
        snapshot then lives until its TTL runs out."""
        keys = [self.key(s) for s in subjects]
        if not keys:
            return
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                for key in keys:
                    pipe.set(key, TOMBSTONE, ex=self._tombstone_ttl)
                await pipe.execute()
        except RedisError as exc:
            logger.warning(
                "principal snapshots not dropped (stale for at most %d s): %s", self.ttl, exc
            )
