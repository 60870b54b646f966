"""Memory-tier hits answered before routing (guide: "Multi-Level Caching").

A cached answer read from the memory tier costs a dictionary lookup; served by its endpoint it
also costs the router's match, the dependencies (a session, the cache, the state) and the
response's construction, five to ten times the lookup (docs/performance.md, "Hot paths"). This
pure ASGI middleware answers a `GET` of a registered path from the memory tier when the entry is
there, with the same body and headers the endpoint would send, and hands everything else (a
miss, another method, a path it does not know) to the app. Add it inside the observability
middleware: a hit is still timed, counted by its route template and logged with its request id.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

from patterns.cache.core import Cache
from patterns.cache.keys import CacheSpec

__all__ = ["EdgeEntry", "MemoryHitMiddleware"]


@dataclass(frozen=True)
class EdgeEntry:
    """What a path's endpoint caches: its spec and key parts (public answers only: a request's
    principal is not known before routing)."""

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

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "GET":
            await self.app(scope, receive, send)
            return
        entry = self._entries.get(scope["path"])
        cache = self._cache_of(scope) if entry is not None else None
        body = cache.memory_hit(entry.spec, entry.parts) if cache and entry else None
        if body is None or entry is None:
            await self.app(scope, receive, send)
            return
        headers = [
            (b"content-length", str(len(body)).encode("latin-1")),
            (b"content-type", entry.media_type.encode("latin-1")),
        ]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})
