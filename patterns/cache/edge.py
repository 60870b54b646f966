"""Cached answers served before routing (guide: "Redis Caching", "Multi-Level Caching").

A cached answer read from the memory tier costs a dictionary lookup; served by its endpoint it
also costs the router's match, the dependencies (a session, the cache, the state) and the
response's construction, five to ten times the lookup (docs/performance.md, "Hot paths"). Two
pure ASGI middlewares answer a `GET` of a registered path with the stored bytes and the headers
the endpoint would send, and hand everything else to the app:

* `MemoryHitMiddleware`, public answers from this process's memory tier;
* `PrincipalHitMiddleware`, one principal's answer from Redis, when the bearer token and its
  subject pass the same checks the endpoint's dependencies make.

Add them inside the observability middleware: a hit is still timed, counted by its route
template and logged with its request id.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from pydantic import BaseModel
from redis.exceptions import RedisError
from starlette.types import ASGIApp, Receive, Scope, Send

from patterns.cache.codec import as_bytes
from patterns.cache.core import Cache
from patterns.cache.keys import CacheSpec
from patterns.errors import AuthenticationError
from patterns.security.jwt import Claims, TokenService, TokenType
from patterns.security.principals import PrincipalCache

__all__ = ["EdgeEntry", "MemoryHitMiddleware", "PrincipalHitMiddleware", "bearer_token"]

P = TypeVar("P", bound=BaseModel)
KEY_MEMO_SIZE = 4096


@dataclass(frozen=True)
class EdgeEntry:
    """What a path's endpoint caches: its spec and key parts (and, for a per-principal spec,
    the principal, which `PrincipalHitMiddleware` adds)."""

    spec: CacheSpec
    parts: Mapping[str, Any] = field(default_factory=dict)
    media_type: str = "application/json"


class MemoryHitMiddleware:
    """Serve `entries[path]` from `cache_of(scope)`'s memory tier on a `GET`, if it holds it.

    `cache_of` returns the app's cache, or None while it has none (before start-up).
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        cache_of: Callable[[Scope], Cache | None],
        entries: Mapping[str, EdgeEntry],
    ) -> None:
        self.app = app
        self._cache_of = cache_of
        self._entries = {p: e for p, e in entries.items() if e.spec.memory_ttl is not None}
        # An entry's key, kept with the cache prefix it was made under: its parts are fixed,
        # and hashing them is a third of what a hit costs here.
        self._keys: dict[str, tuple[str, str]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "GET":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        entry = self._entries.get(path)
        cache = self._cache_of(scope) if entry is not None else None
        body = self._hit(cache, path, entry) if cache is not None and entry is not None else None
        if body is None or entry is None:
            await self.app(scope, receive, send)
            return
        await _answer(send, body, entry.media_type)

    def _hit(self, cache: Cache, path: str, entry: EdgeEntry) -> bytes | None:
        kept = self._keys.get(path)
        if kept is None or kept[0] != cache.prefix:
            kept = self._keys[path] = (cache.prefix, cache.key(entry.spec, entry.parts))
        return cache.memory_hit(entry.spec, key=kept[1])


class PrincipalHitMiddleware(Generic[P]):
    """Serve `entries[path]` for the request's principal from Redis on a `GET`, when the
    endpoint would serve that same entry.

    The per-user profile, cached in Redis, cost 0.55 ms of server CPU per request served by
    its endpoint, 0.14× the throughput of a bare FastAPI `/ping`: the dependencies (token,
    current user, session, cache) took 36 % of it and two Redis round trips 20 %. Here a hit is
    the token's verification (`TokenService.decode`, memoised), then ONE round trip
    (`PrincipalCache.lookup_with`, an `MGET`) for the revocation keys, the subject's snapshot
    and the cached answer, and the stored bytes: about 0.3 ms, 0.4–0.5× `/ping`
    (docs/performance.md, "Hot paths").

    The app gives the checks its dependencies make, so a request gets the bytes only where the
    endpoint would return them: `subject_of(claims)` is the canonical subject (the snapshot is
    keyed by `str(subject)`, the cache entry by `principal=subject`), None when the endpoint
    would refuse it; `admits(claims, snapshot)` says whether the endpoint accepts the token's
    subject as that snapshot describes it (active, same credentials version…). Everything else
    goes to the app, which answers as it would without this middleware: no bearer token, a
    token that does not verify (expired, forged, of another type), a revoked token, a missing
    snapshot or tombstone, a snapshot not admitted, a cache miss, Redis failing or the cache
    not reading Redis just now (`Cache.redis_readable`). A Redis error is also reported to the
    cache (`Cache.redis_failed`); the endpoint then applies its own revocation policy.

    Only endpoints whose whole effect on a hit is reading the entry may be registered (no rate
    limit, no activity recorded, no header of their own). `*_of` return None while the app has
    no Redis parts (before start-up).
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        tokens: TokenService,
        principals_of: Callable[[Scope], PrincipalCache[P] | None],
        cache_of: Callable[[Scope], Cache | None],
        entries: Mapping[str, EdgeEntry],
        subject_of: Callable[[Claims], int | str | None],
        admits: Callable[[Claims, P], bool],
    ) -> None:
        self.app = app
        self._tokens = tokens
        self._principals_of = principals_of
        self._cache_of = cache_of
        self._entries = {p: e for p, e in entries.items() if e.spec.per_principal}
        self._subject_of = subject_of
        self._admits = admits
        # Each principal's cache key, made once: hashing the key's canonical JSON is a tenth of
        # a hit's own CPU.
        self._keys: dict[tuple[str, str, int | str], str] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        entry = None
        if scope["type"] == "http" and scope["method"] == "GET":
            entry = self._entries.get(scope["path"])
        body = await self._hit(scope, entry) if entry is not None else None
        if body is None or entry is None:
            await self.app(scope, receive, send)
            return
        await _answer(send, body, entry.media_type)

    async def _hit(self, scope: Scope, entry: EdgeEntry) -> bytes | None:
        token = bearer_token(scope["headers"])
        principals, cache = self._principals_of(scope), self._cache_of(scope)
        if token is None or principals is None or cache is None or not cache.redis_readable():
            return None
        try:
            claims = self._tokens.decode(token, TokenType.ACCESS)
        except AuthenticationError:
            return None
        subject = self._subject_of(claims)
        if subject is None:
            return None
        key = self._key(cache, scope["path"], entry, subject)
        try:
            revoked, snapshot, (raw,) = await principals.lookup_with(claims, str(subject), [key])
        except RedisError as exc:
            cache.redis_failed(exc)
            return None
        if revoked or snapshot is None or raw is None or not self._admits(claims, snapshot):
            return None
        cache.record_hit(entry.spec)
        return as_bytes(raw)

    def _key(self, cache: Cache, path: str, entry: EdgeEntry, subject: int | str) -> str:
        memo = (cache.prefix, path, subject)
        key = self._keys.get(memo)
        if key is None:
            if len(self._keys) >= KEY_MEMO_SIZE:
                self._keys.pop(next(iter(self._keys)))  # the oldest
            key = self._keys[memo] = cache.key(entry.spec, entry.parts, principal=subject)
        return key


def bearer_token(headers: Iterable[tuple[bytes, bytes]]) -> str | None:
    """The token of the first `Authorization` header if its scheme is Bearer, as FastAPI's
    `OAuth2PasswordBearer` reads it; else None."""
    for name, value in headers:
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            if scheme.lower() != "bearer":
                return None
            return token.strip() or None
    return None


async def _answer(send: Send, body: bytes, media_type: str) -> None:
    """A 200 with the headers a `Response(body, media_type=...)` sends."""
    headers = [
        (b"content-length", str(len(body)).encode("latin-1")),
        (b"content-type", media_type.encode("latin-1")),
    ]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})
