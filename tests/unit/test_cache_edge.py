"""Memory-tier hits answered before routing (patterns.cache.edge): the stored bytes as the
endpoint would send them, counted as hits; anything else reaches the endpoint."""

from __future__ import annotations

from fakeredis import FakeAsyncRedis
from httpx import ASGITransport, AsyncClient
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Scope

from patterns.cache import Cache, CacheSpec
from patterns.cache.edge import EdgeEntry, MemoryHitMiddleware

SPEC = CacheSpec("edge.test", ttl=60, memory_ttl=5)
REDIS_ONLY = CacheSpec("edge.redis_only", ttl=60)


def _app(cache: Cache, calls: list[str]) -> MemoryHitMiddleware:
    async def endpoint(request: Request) -> Response:
        calls.append(request.method)
        return Response(b'"from the endpoint"', media_type="application/json")

    inner = Starlette(routes=[Route("/hot", endpoint, methods=["GET", "POST"]),
                              Route("/cold", endpoint)])  # fmt: skip

    def cache_of(_scope: Scope) -> Cache:
        return cache

    entries = {"/hot": EdgeEntry(SPEC, {"n": 1}), "/cold": EdgeEntry(REDIS_ONLY)}
    return MemoryHitMiddleware(inner, cache_of=cache_of, entries=entries)


async def test_a_memory_hit_is_the_stored_bytes_and_never_reaches_the_endpoint() -> None:
    events: list[tuple[str, str]] = []
    cache = Cache(FakeAsyncRedis(), on_event=lambda e, ns: events.append((e, ns)))
    calls: list[str] = []
    async with AsyncClient(transport=ASGITransport(_app(cache, calls)), base_url="http://t") as c:
        miss = await c.get("/hot")
        cache.memory.set(cache.key(SPEC, {"n": 1}), b'{"cached":true}', 5)
        hit = await c.get("/hot")
        posted = await c.post("/hot")
    assert posted.content == b'"from the endpoint"'
    assert miss.content == b'"from the endpoint"'
    assert hit.status_code == 200
    assert hit.content == b'{"cached":true}'
    assert hit.headers["content-type"] == "application/json"
    assert hit.headers["content-length"] == str(len(b'{"cached":true}'))
    assert calls == ["GET", "POST"]  # the miss and the POST; not the hit
    assert events == [("hit", "edge.test")]


async def test_a_spec_without_memory_tier_and_a_dropped_entry_reach_the_endpoint() -> None:
    cache = Cache(FakeAsyncRedis())
    calls: list[str] = []
    key = cache.key(SPEC, {"n": 1})
    async with AsyncClient(transport=ASGITransport(_app(cache, calls)), base_url="http://t") as c:
        cache.memory.set(cache.key(REDIS_ONLY), b"[]", 5)
        cold = await c.get("/cold")
        cache.memory.set(key, b"[]", 5)
        await cache.invalidate(key)
        dropped = await c.get("/hot")
    assert cold.content == dropped.content == b'"from the endpoint"'
    assert calls == ["GET", "GET"]
