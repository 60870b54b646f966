"""Concurrent MGETs sharing one pipeline (patterns.cache.batching): each caller gets its own
reply, in one round trip; an error reaches every caller of the batch."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from fakeredis import FakeAsyncRedis, FakeServer
from redis.exceptions import ConnectionError as RedisConnectionError

from patterns.cache.batching import MgetBatcher


class CountingRedis(FakeAsyncRedis):  # type: ignore[misc]  # fakeredis is untyped
    """Counts the round trips: a lone MGET, or a pipeline."""

    round_trips = 0

    async def mget(self, keys: Any, *args: Any) -> Any:
        self.round_trips += 1
        return await super().mget(keys, *args)

    def pipeline(self, transaction: bool = True, shard_hint: Any = None) -> Any:
        self.round_trips += 1
        return super().pipeline(transaction=transaction, shard_hint=shard_hint)


async def test_calls_of_one_turn_share_a_round_trip_and_get_their_own_replies() -> None:
    redis = CountingRedis()
    await redis.mset({f"k{i}": f"v{i}" for i in range(20)})
    batcher = MgetBatcher(redis)
    asks = [[f"k{i}", "missing", f"k{(i + 1) % 20}"] for i in range(20)]
    replies = await asyncio.gather(*(batcher.mget(keys) for keys in asks))
    assert replies == [[f"v{i}".encode(), None, f"v{(i + 1) % 20}".encode()] for i in range(20)]
    assert redis.round_trips == 1
    assert await batcher.mget(["k3"]) == [b"v3"]  # alone: a plain MGET
    assert redis.round_trips == 2


async def test_a_redis_error_reaches_every_caller_of_the_batch_and_the_next_batch_works() -> None:
    server = FakeServer()
    redis = FakeAsyncRedis(server=server)
    await redis.set("k", "v")
    batcher = MgetBatcher(redis)
    server.connected = False
    failed = await asyncio.gather(*(batcher.mget(["k"]) for _ in range(3)), return_exceptions=True)
    assert all(isinstance(f, RedisConnectionError) for f in failed)
    server.connected = True
    assert list(await asyncio.gather(batcher.mget(["k"]), batcher.mget(["x"]))) == [[b"v"], [None]]


async def test_a_cancelled_caller_leaves_the_others_their_replies() -> None:
    redis = FakeAsyncRedis()
    await redis.set("k", "v")
    batcher = MgetBatcher(redis)
    first = asyncio.ensure_future(batcher.mget(["k"]))
    second = asyncio.ensure_future(batcher.mget(["k"]))
    await asyncio.sleep(0)  # both queued
    first.cancel()
    assert await second == [b"v"]
    with pytest.raises(asyncio.CancelledError):
        await first
