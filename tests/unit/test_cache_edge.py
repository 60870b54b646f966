"""Cached answers served before routing (patterns.cache.edge): the stored bytes as the endpoint
would send them, counted as hits; anything else reaches the endpoint."""

from __future__ import annotations

import pytest
from fakeredis import FakeAsyncRedis, FakeServer
from fastapi.security import OAuth2PasswordBearer
from httpx import ASGITransport, AsyncClient
from pydantic import BaseModel
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Scope

from patterns.cache import Cache, CacheSettings, CacheSpec
from patterns.cache.edge import EdgeEntry, MemoryHitMiddleware, PrincipalHitMiddleware, bearer_token
from patterns.security import TokenService, TokenType
from patterns.security.principals import PrincipalCache
from patterns.security.revocation import RevocationList

SPEC = CacheSpec("edge.test", ttl=60, memory_ttl=5)
REDIS_ONLY = CacheSpec("edge.redis_only", ttl=60)
MINE = CacheSpec("edge.mine", ttl=60, per_principal=True, lock=False)


class Snapshot(BaseModel):
    active: bool


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


async def test_the_kept_key_follows_the_cache_the_app_has_now() -> None:
    """The middleware keeps each entry's key; an app given a new cache (another prefix, as after
    a restart of its lifespan) is read under the new cache's key, not the old one's."""
    first = Cache(FakeAsyncRedis(), CacheSettings(prefix="one"))
    second = Cache(FakeAsyncRedis(), CacheSettings(prefix="two"))
    current = [first]
    calls: list[str] = []

    async def endpoint(request: Request) -> Response:
        calls.append(request.method)
        return Response(b'"from the endpoint"', media_type="application/json")

    app = MemoryHitMiddleware(
        Starlette(routes=[Route("/hot", endpoint)]),
        cache_of=lambda _scope: current[0],
        entries={"/hot": EdgeEntry(SPEC, {"n": 1})},
    )
    first.memory.set(first.key(SPEC, {"n": 1}), b'"one"', 5)
    second.memory.set(second.key(SPEC, {"n": 1}), b'"two"', 5)
    async with AsyncClient(transport=ASGITransport(app), base_url="http://t") as c:
        answers = [(await c.get("/hot")).content]
        current[0] = second
        answers.append((await c.get("/hot")).content)
        second.memory.clear()
        answers.append((await c.get("/hot")).content)
    assert answers == [b'"one"', b'"two"', b'"from the endpoint"']
    assert calls == ["GET"]


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


@pytest.mark.parametrize(
    "value",
    [
        None,
        "",
        "Bearer abc",
        "bearer abc",
        "BEARER  abc ",
        "Bearer",
        "Bearer ",
        "Basic dXNlcjpwYXNz",
        "Bearerabc",
        "Token abc",
    ],
)
async def test_the_bearer_token_is_read_as_fastapis_oauth2_scheme_reads_it(
    value: str | None,
) -> None:
    headers = [] if value is None else [(b"authorization", value.encode("latin-1"))]
    request = Request({"type": "http", "headers": headers})
    expected = await OAuth2PasswordBearer(tokenUrl="/t", auto_error=False)(request)
    # FastAPI's scheme gives "" for "Bearer ", which the app refuses like no token at all.
    assert bearer_token(headers) == (expected or None)


def _principal_app(
    redis: FakeAsyncRedis, tokens: TokenService, calls: list[str]
) -> tuple[PrincipalHitMiddleware[Snapshot], Cache, PrincipalCache[Snapshot]]:
    async def endpoint(request: Request) -> Response:
        calls.append(request.method)
        return Response(b'"from the endpoint"', media_type="application/json")

    cache = Cache(redis)
    principals = PrincipalCache(redis, RevocationList(redis), Snapshot)
    middleware = PrincipalHitMiddleware(
        Starlette(routes=[Route("/mine", endpoint)]),
        tokens=tokens,
        principals_of=lambda _scope: principals,
        cache_of=lambda _scope: cache,
        entries={"/mine": EdgeEntry(MINE)},
        subject_of=lambda claims: int(claims.sub),
        admits=lambda _claims, snapshot: snapshot.active,
    )
    return middleware, cache, principals


async def test_a_principal_hit_needs_a_verified_token_an_admitted_snapshot_and_the_entry() -> None:
    redis = FakeAsyncRedis()
    tokens = TokenService("s" * 32, issuer="i", audience="a")
    other = TokenService("t" * 32, issuer="i", audience="a")
    calls: list[str] = []
    app, cache, principals = _principal_app(redis, tokens, calls)
    token, claims = tokens.create(7, TokenType.ACCESS)
    forged, _ = other.create(7, TokenType.ACCESS)
    refresh, _ = tokens.create(7, TokenType.REFRESH)
    bearer = {"Authorization": f"Bearer {token}"}
    async with AsyncClient(transport=ASGITransport(app), base_url="http://t") as c:
        no_snapshot = await c.get("/mine", headers=bearer)
        await principals.store("7", Snapshot(active=True))
        no_entry = await c.get("/mine", headers=bearer)
        await cache.set(MINE, {"mine": 7}, principal=7)
        hit = await c.get("/mine", headers=bearer)
        for wrong in (forged, refresh, "not.a.jwt"):
            await c.get("/mine", headers={"Authorization": f"Bearer {wrong}"})
        await RevocationList(redis).revoke(claims)
        revoked = await c.get("/mine", headers=bearer)
    assert hit.content == b'{"mine":7}'
    assert no_snapshot.content == no_entry.content == revoked.content == b'"from the endpoint"'
    assert len(calls) == 6  # everything but the hit


async def test_an_inactive_snapshot_or_a_redis_failure_reaches_the_endpoint() -> None:
    server = FakeServer()
    redis = FakeAsyncRedis(server=server)
    tokens = TokenService("s" * 32, issuer="i", audience="a")
    calls: list[str] = []
    app, cache, principals = _principal_app(redis, tokens, calls)
    token, _ = tokens.create(7, TokenType.ACCESS)
    bearer = {"Authorization": f"Bearer {token}"}
    await principals.store("7", Snapshot(active=False))
    await cache.set(MINE, {"mine": 7}, principal=7)
    async with AsyncClient(transport=ASGITransport(app), base_url="http://t") as c:
        inactive = await c.get("/mine", headers=bearer)
        await redis.set(principals.key("7"), Snapshot(active=True).model_dump_json())
        hit = await c.get("/mine", headers=bearer)
        server.connected = False  # every command raises ConnectionError
        down = await c.get("/mine", headers=bearer)
    assert hit.content == b'{"mine":7}'
    assert inactive.content == down.content == b'"from the endpoint"'
    assert calls == ["GET", "GET"]
    # Reads skip Redis for a while, as after a failure of the cache's own.
    assert not cache.redis_readable()
