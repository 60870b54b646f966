"""The cache without a Redis server: the memory tier, and Redis unreachable (a closed port)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from fakeredis import FakeAsyncRedis
from pydantic import BaseModel
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from patterns.cache import Cache, CacheSettings, CacheSpec, MemoryTier, WarmEntry
from patterns.cache.lock import LoadLock
from patterns.testing import FakeClock
from patterns.testing.backends import free_port


class Calls:
    """A compute function that counts its calls."""

    def __init__(self, value: Any) -> None:
        self.value = value
        self.count = 0

    async def __call__(self) -> Any:
        self.count += 1
        return self.value


class Out(BaseModel):
    id: int
    name: str


def test_memory_tier_evicts_the_least_recently_used_entry() -> None:
    memory = MemoryTier(2)
    memory.set("a", b"1", 60)
    memory.set("b", b"2", 60)
    assert memory.get("a") == b"1"  # "a" is now more recent than "b"
    memory.set("c", b"3", 60)
    assert "b" not in memory
    assert memory.get("a") == b"1"
    assert memory.get("c") == b"3"


def test_memory_tier_entries_expire_after_their_own_ttl() -> None:
    clock = FakeClock()
    memory = MemoryTier(10, timer=clock)
    memory.set("short", b"s", 5)
    memory.set("long", b"l", 50)
    clock.now += 5.01
    assert memory.get("short") is None
    assert memory.get("long") == b"l"
    assert len(memory) == 1


def test_memory_tier_discards_and_clears() -> None:
    memory = MemoryTier(10)
    for key in "abc":
        memory.set(key, key.encode(), 60)
    memory.discard(["a", "missing"])
    assert memory.get("a") is None
    assert len(memory) == 2
    memory.clear()
    assert len(memory) == 0


def test_memory_tier_refuses_a_zero_size() -> None:
    with pytest.raises(ValueError, match="maxsize"):
        MemoryTier(0)


# --- Redis unreachable ---------------------------------------------------------------------


@pytest_asyncio.fixture
async def dead_redis() -> AsyncIterator[Redis]:
    """A client for a port nothing listens on: every command raises ConnectionError at once
    (redis-py 6+ retries failed commands with backoff by default; a cache client should not)."""
    client = Redis(host="127.0.0.1", port=free_port(), retry=Retry(NoBackoff(), 0))
    yield client
    await client.aclose()


async def test_with_redis_down_the_value_is_computed_and_returned(
    dead_redis: Redis, caplog: pytest.LogCaptureFixture
) -> None:
    events: list[str] = []
    cache = Cache(dead_redis, on_event=lambda event, _ns: events.append(event))
    compute = Calls({"answer": 42})
    with caplog.at_level(logging.WARNING, logger="patterns.cache"):
        assert await cache.get_or_set(CacheSpec("x", ttl=60), compute) == {"answer": 42}
    assert compute.count == 1
    assert events == ["redis_error", "miss"]
    assert "Redis unavailable" in caplog.text


async def test_with_redis_down_a_model_is_still_validated(dead_redis: Redis) -> None:
    cache = Cache(dead_redis)
    result = await cache.get_or_set(
        CacheSpec("x", ttl=60), Calls({"id": 1, "name": "a"}), model=Out
    )
    assert result == Out(id=1, name="a")


async def test_after_a_redis_error_reads_skip_redis_until_the_retry_window_passes(
    dead_redis: Redis, caplog: pytest.LogCaptureFixture
) -> None:
    clock = FakeClock()
    errors: list[str] = []
    cache = Cache(
        dead_redis,
        CacheSettings(retry_after=5, warn_interval=30),
        clock=clock,
        on_event=lambda event, _ns: errors.append(event) if event == "redis_error" else None,
    )
    spec = CacheSpec("x", ttl=60)
    with caplog.at_level(logging.WARNING, logger="patterns.cache"):
        await cache.get_or_set(spec, Calls(1))
        await cache.get_or_set(spec, Calls(1), parts={"other": True})
        assert errors == ["redis_error"]  # the second read did not try Redis
        clock.now += 5
        await cache.get_or_set(spec, Calls(1))
        assert errors == ["redis_error", "redis_error"]
    # Two failures, one warning: the second is inside the warning interval.
    assert caplog.text.count("Redis unavailable") == 1


async def test_with_redis_down_the_memory_tier_still_serves(dead_redis: Redis) -> None:
    cache = Cache(dead_redis)
    spec = CacheSpec("x", ttl=60, memory_ttl=5)
    compute = Calls([1, 2])
    assert await cache.get_or_set(spec, compute) == [1, 2]
    assert await cache.get_or_set(spec, compute) == [1, 2]
    assert compute.count == 1


async def test_with_redis_down_invalidation_does_not_raise_and_clears_memory(
    dead_redis: Redis,
) -> None:
    cache = Cache(dead_redis)
    spec = CacheSpec("x", ttl=60, memory_ttl=5)
    await cache.get_or_set(spec, Calls(1))
    await cache.invalidate(cache.key(spec))
    await cache.invalidate_tags("items")
    assert len(cache.memory) == 0


async def test_with_redis_down_warming_reports_the_entries_it_could_not_store(
    dead_redis: Redis,
) -> None:
    cache = Cache(dead_redis)
    report = await cache.warm([WarmEntry(CacheSpec("x", ttl=60), Calls(1))])
    assert (report.warmed, report.failed) == (0, 1)


def test_cache_refuses_nonsense_timing() -> None:
    client = Redis(host="127.0.0.1", port=free_port())
    with pytest.raises(ValueError, match="positive"):
        Cache(client, CacheSettings(poll_interval=0))


def _held_lock_waiter(clock: FakeClock, events: list[str]) -> tuple[FakeAsyncRedis, LoadLock]:
    redis = FakeAsyncRedis()
    settings = CacheSettings(wait_timeout=0.05, poll_interval=0.01, max_poll_interval=0.01)
    waiter = LoadLock(
        redis,
        settings,
        clock=clock,
        on_event=lambda event, _ns: events.append(event),
        on_redis_error=lambda exc: events.append("redis_error"),
    )
    return redis, waiter


async def test_a_lock_wait_is_bounded_even_when_the_clock_stands_still() -> None:
    events: list[str] = []
    redis, waiter = _held_lock_waiter(FakeClock(), events)
    await redis.set("k:lock", "another process", px=60_000)
    assert await waiter.find_or_lock("k", "ns") == (None, None)
    assert events == ["lock_wait", "lock_timeout"]


async def test_a_lock_wait_ends_when_the_injected_clock_passes_the_deadline() -> None:
    clock = FakeClock()
    events: list[str] = []
    redis, waiter = _held_lock_waiter(clock, events)
    await redis.set("k:lock", "another process", px=60_000)
    polls = 0
    get = redis.get

    async def counting_get(key: str) -> Any:
        nonlocal polls
        polls += 1
        clock.advance(1.0)  # each look at Redis takes "a second" on this clock
        return await get(key)

    redis.get = counting_get
    assert await waiter.find_or_lock("k", "ns") == (None, None)
    assert events == ["lock_wait", "lock_timeout"]
    assert polls == 1  # the first GET; the wait saw its deadline passed and never polled
