"""The response cache on real Redis: keys, TTL, models, tags, after-commit invalidation,
stampede protection, the memory tier, warming and counters."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, cast

import pytest
import pytest_asyncio
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry
from prometheus_client import Counter as PromCounter
from pydantic import BaseModel, TypeAdapter, ValidationError
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from sqlalchemy.ext.asyncio import AsyncSession

from patterns.cache import Cache, CacheSettings, CacheSpec, WarmEntry
from patterns.db.session import commit, rollback
from patterns.testing import FakeClock

SPEC = CacheSpec("items.list", ttl=60)
PROFILE = CacheSpec("users.profile", ttl=600, per_principal=True)


class Calls:
    """A compute function that counts its calls and may be held until released."""

    def __init__(self, value: Any = None, *, hold: bool = False) -> None:
        self.value = value
        self.count = 0
        self.started = asyncio.Event()
        self.release = asyncio.Event()
        self._counted = asyncio.Condition()
        if not hold:
            self.release.set()

    async def __call__(self) -> Any:
        self.count += 1
        self.started.set()
        async with self._counted:
            self._counted.notify_all()
        await self.release.wait()
        return self.value

    async def reached(self, calls: int) -> None:
        """Return once `calls` calls have started (held ones included)."""
        async with self._counted:
            await self._counted.wait_for(lambda: self.count >= calls)


class Item(BaseModel):
    id: int
    price: Decimal
    created_at: datetime


class ItemRow:
    """Stands in for an ORM object: read by attribute."""

    def __init__(self, id: int, price: Decimal) -> None:
        self.id, self.price = id, price
        self.created_at = datetime(2024, 1, 1, tzinfo=UTC)


class EventLog:
    """Records the cache's events; `reached(event, n)` is set once `event` happened n times."""

    def __init__(self) -> None:
        self.seen: Counter[str] = Counter()
        self._targets: dict[str, tuple[int, asyncio.Event]] = {}

    def reached(self, event: str, times: int) -> asyncio.Event:
        self._targets[event] = (times, asyncio.Event())
        return self._targets[event][1]

    def __call__(self, event: str, namespace: str) -> None:
        self.seen[event] += 1
        target = self._targets.get(event)
        if target is not None and self.seen[event] >= target[0]:
            target[1].set()


def _logged_cache(client: Redis, **settings: Any) -> tuple[Cache, EventLog]:
    """A cache on `client` whose events go to a new EventLog."""
    log = EventLog()
    return Cache(client, CacheSettings(prefix="test", **settings), on_event=log), log


@pytest.fixture
def cache(redis_client: Redis) -> Cache:
    return Cache(redis_client, CacheSettings(prefix="test"))


@pytest_asyncio.fixture
async def redis_clients(redis_url: str, redis_client: Redis) -> AsyncIterator[Callable[[], Redis]]:
    """Separate clients (separate connection pools), as separate processes would have, on this
    worker's database, emptied before and after the test (`redis_client`)."""
    made: list[Redis] = []

    def make() -> Redis:
        made.append(Redis.from_url(redis_url))
        return made[-1]

    yield make
    for client in made:
        await client.aclose()


async def test_a_miss_computes_and_stores_then_a_hit_does_not_compute(cache: Cache) -> None:
    compute = Calls({"items": [1, 2]})
    assert await cache.get_or_set(SPEC, compute, parts={"page": 1}) == {"items": [1, 2]}
    assert await cache.get_or_set(SPEC, compute, parts={"page": 1}) == {"items": [1, 2]}
    assert compute.count == 1


async def test_the_ttl_is_set_on_the_stored_entry(cache: Cache, redis_client: Redis) -> None:
    spec = CacheSpec("items.featured", ttl=300)
    await cache.get_or_set(spec, Calls([1]))
    pttl = await redis_client.pttl(cache.key(spec))
    assert 299_000 < pttl <= 300_000


async def test_models_are_stored_as_json_and_revalidated_on_a_hit(
    cache: Cache, redis_client: Redis
) -> None:
    rows = [ItemRow(1, Decimal("9.99")), ItemRow(2, Decimal("0.50"))]
    adapter = TypeAdapter(list[Item])
    first = await cache.get_or_set(SPEC, Calls(rows), model=adapter)  # ORM-like objects in
    second = await cache.get_or_set(SPEC, Calls(None), model=adapter)
    assert first == second
    assert second[0] == Item(id=1, price=Decimal("9.99"), created_at=rows[0].created_at)
    stored = await redis_client.get(cache.key(SPEC))
    assert stored == (
        b'[{"id":1,"price":"9.99","created_at":"2024-01-01T00:00:00Z"},'
        b'{"id":2,"price":"0.50","created_at":"2024-01-01T00:00:00Z"}]'
    )


async def test_get_or_set_json_hands_out_the_stored_bytes_on_a_miss_and_on_a_hit(
    cache: Cache, redis_client: Redis
) -> None:
    rows = [ItemRow(1, Decimal("9.99"))]
    compute = Calls(rows)
    miss = await cache.get_or_set_json(SPEC, compute, model=list[Item])
    hit = await cache.get_or_set_json(SPEC, compute, model=list[Item])
    assert compute.count == 1
    assert miss == hit == await redis_client.get(cache.key(SPEC))
    assert miss == b'[{"id":1,"price":"9.99","created_at":"2024-01-01T00:00:00Z"}]'
    # The same entry serves get_or_set for the same spec and inputs, validated into the model.
    assert await cache.get_or_set(SPEC, Calls(None), model=list[Item]) == [
        Item(id=1, price=Decimal("9.99"), created_at=rows[0].created_at)
    ]


async def test_get_or_set_json_refuses_a_value_its_model_does_not_accept(cache: Cache) -> None:
    with pytest.raises(ValidationError):
        await cache.get_or_set_json(SPEC, Calls([{"id": "x"}]), model=list[Item])
    assert await cache.get_or_set_json(SPEC, Calls([]), model=list[Item]) == b"[]"


async def test_without_a_model_a_miss_and_a_hit_return_the_same_json_shape(cache: Cache) -> None:
    value = {
        "price": Decimal("1.50"),
        "model": Item(id=1, price=Decimal(2), created_at=datetime(2024, 1, 1, tzinfo=UTC)),
    }
    miss = await cache.get_or_set(SPEC, Calls(value))
    hit = await cache.get_or_set(SPEC, Calls(None))
    assert (
        miss
        == hit
        == {
            "price": "1.50",
            "model": {"id": 1, "price": "2", "created_at": "2024-01-01T00:00:00Z"},
        }
    )


async def test_a_decoding_client_works_too(redis_url: str) -> None:
    client = Redis.from_url(redis_url, decode_responses=True)
    try:
        cache = Cache(client, CacheSettings(prefix="test"))
        await cache.get_or_set(SPEC, Calls([1]), tags=["t"])
        assert await cache.get_or_set(SPEC, Calls(None)) == [1]
        await cache.invalidate_tags("t")
        assert await client.exists(cache.key(SPEC)) == 0
    finally:
        await client.aclose()


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=10),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
)
parts_strategy = st.dictionaries(st.text(max_size=6), json_values, max_size=4)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(a=parts_strategy, b=parts_strategy)
async def test_two_calls_differing_in_any_input_never_share_an_entry(
    cache: Cache, a: dict[str, Any], b: dict[str, Any]
) -> None:
    assume(a != b)
    # Each compute returns its own input; an entry shared with the other input would show it.
    got_a = await cache.get_or_set(SPEC, Calls({"input": a}), parts=a)
    got_b = await cache.get_or_set(SPEC, Calls({"input": b}), parts=b)
    assert got_a == {"input": a}
    assert got_b == {"input": b}


async def test_principal_a_never_gets_principal_bs_entry(cache: Cache) -> None:
    alice = await cache.get_or_set(PROFILE, Calls({"name": "alice"}), principal=1)
    bob = await cache.get_or_set(PROFILE, Calls({"name": "bob"}), principal=2)
    assert (alice, bob) == ({"name": "alice"}, {"name": "bob"})
    assert await cache.get_or_set(PROFILE, Calls(None), principal=1) == {"name": "alice"}
    with pytest.raises(ValueError, match="per principal"):
        await cache.get_or_set(PROFILE, Calls(None))


# --- invalidation ---------------------------------------------------------------------------


async def test_invalidating_a_key_makes_the_next_read_compute(cache: Cache) -> None:
    await cache.get_or_set(SPEC, Calls("old"), parts={"id": 1})
    await cache.get_or_set(SPEC, Calls("other"), parts={"id": 2})
    await cache.invalidate(cache.key(SPEC, {"id": 1}))
    assert await cache.get_or_set(SPEC, Calls("new"), parts={"id": 1}) == "new"
    assert await cache.get_or_set(SPEC, Calls("x"), parts={"id": 2}) == "other"


async def test_invalidating_a_tag_drops_exactly_its_entries(
    cache: Cache, redis_client: Redis
) -> None:
    await cache.get_or_set(SPEC, Calls("a"), parts={"n": 1}, tags=["items", "item:1"])
    await cache.get_or_set(SPEC, Calls("b"), parts={"n": 2}, tags=["items"])
    await cache.get_or_set(SPEC, Calls("c"), parts={"n": 3}, tags=["users"])
    await cache.invalidate_tags("items")
    assert await cache.get_or_set(SPEC, Calls("a2"), parts={"n": 1}) == "a2"
    assert await cache.get_or_set(SPEC, Calls("b2"), parts={"n": 2}) == "b2"
    assert await cache.get_or_set(SPEC, Calls("c2"), parts={"n": 3}) == "c"
    assert await redis_client.exists(cache.tag_key("items")) == 0


async def test_a_tag_set_lives_as_long_as_its_longest_lived_entry(
    cache: Cache, redis_client: Redis
) -> None:
    await cache.get_or_set(CacheSpec("short", ttl=10), Calls(1), tags=["t"])
    await cache.get_or_set(CacheSpec("long", ttl=1000), Calls(1), tags=["t"])
    await cache.get_or_set(CacheSpec("mid", ttl=100), Calls(1), tags=["t"])
    assert 999_000 < await redis_client.pttl(cache.tag_key("t")) <= 1_000_000


async def test_after_commit_invalidation_waits_for_the_commit(
    cache: Cache, db_session: AsyncSession
) -> None:
    await cache.get_or_set(SPEC, Calls("old"), tags=["items"])
    cache.invalidate_on_commit(db_session, tags=["items"])
    assert await cache.get_or_set(SPEC, Calls("new")) == "old"  # not yet committed
    await commit(db_session)
    assert await cache.get_or_set(SPEC, Calls("new")) == "new"


async def test_after_commit_invalidation_is_dropped_on_rollback(
    cache: Cache, db_session: AsyncSession
) -> None:
    await cache.get_or_set(SPEC, Calls("old"), parts={"id": 1})
    cache.invalidate_on_commit(db_session, keys=[cache.key(SPEC, {"id": 1})])
    await rollback(db_session)
    await commit(db_session)  # a later commit does not run the rolled-back hook
    assert await cache.get_or_set(SPEC, Calls("new"), parts={"id": 1}) == "old"


# --- stampede protection --------------------------------------------------------------------


async def test_concurrent_misses_in_one_process_compute_once(redis_client: Redis) -> None:
    cache, log = _logged_cache(redis_client)
    joined = log.reached("join", 19)
    compute = Calls({"v": 1}, hold=True)
    callers = [asyncio.create_task(cache.get_or_set(SPEC, compute)) for _ in range(20)]
    await joined.wait()  # 19 callers joined the one in-flight load
    compute.release.set()
    assert await asyncio.gather(*callers) == [{"v": 1}] * 20
    assert compute.count == 1
    assert log.seen["lock_wait"] == 0  # the joiners never went to Redis


async def test_concurrent_misses_across_processes_compute_once(
    redis_clients: Callable[[], Redis],
) -> None:
    log = EventLog()
    waiting = log.reached("lock_wait", 3)
    caches = [Cache(redis_clients(), CacheSettings(prefix="test"), on_event=log) for _ in range(4)]
    compute = Calls({"v": 1}, hold=True)
    callers = [
        asyncio.create_task(cache.get_or_set(SPEC, compute)) for cache in caches for _ in range(5)
    ]
    await compute.started.wait()
    await waiting.wait()  # the three other "processes" are waiting on the lock
    compute.release.set()
    assert await asyncio.gather(*callers) == [{"v": 1}] * 20
    assert compute.count == 1
    assert log.seen["miss"] == 1
    assert log.seen["hit"] == 19


async def test_without_the_lock_processes_compute_on_their_own_in_two_round_trips(
    redis_clients: Callable[[], Redis],
) -> None:
    spec = CacheSpec("users.profile", ttl=60, per_principal=True, lock=False)
    log = EventLog()
    caches = [Cache(redis_clients(), CacheSettings(prefix="test"), on_event=log) for _ in range(2)]
    compute = Calls({"v": 1}, hold=True)
    callers = [
        asyncio.create_task(cache.get_or_set(spec, compute, principal=7))
        for cache in caches
        for _ in range(3)
    ]
    # Held until each "process" has started its own computation: no lock between them. A lock
    # would leave the second waiting, and this wait would time out.
    await asyncio.wait_for(compute.reached(2), timeout=5)
    compute.release.set()
    assert await asyncio.gather(*callers) == [{"v": 1}] * 6
    assert compute.count == 2  # one per process: single flight inside each
    assert log.seen["lock_wait"] == 0
    assert not await caches[0].redis.exists(f"{caches[0].key(spec, principal=7)}:lock")
    assert await cache_get(caches[0], spec) == b'{"v":1}'


async def cache_get(cache: Cache, spec: CacheSpec) -> bytes | str | None:
    raw: bytes | str | None = await cache.redis.get(cache.key(spec, principal=7))
    return raw


async def test_a_waiter_takes_over_when_the_lock_holder_vanishes(
    redis_client: Redis, redis_clients: Callable[[], Redis]
) -> None:
    cache, log = _logged_cache(redis_clients())
    waiting = log.reached("lock_wait", 1)
    lock = f"{cache.key(SPEC)}:lock"
    await redis_client.set(lock, "a-process-that-died")
    compute = Calls("computed")
    task = asyncio.create_task(cache.get_or_set(SPEC, compute))
    await waiting.wait()
    await redis_client.delete(lock)  # the holder's lock expired without a value
    assert await task == "computed"
    assert compute.count == 1
    assert await redis_client.get(cache.key(SPEC)) == b'"computed"'
    assert await redis_client.exists(lock) == 0  # the taker released its own lock


async def test_a_waiter_computes_when_the_wait_runs_out(redis_client: Redis) -> None:
    cache, log = _logged_cache(redis_client, wait_timeout=0.05)
    lock = f"{cache.key(SPEC)}:lock"
    await redis_client.set(lock, "a-stuck-process")
    assert await cache.get_or_set(SPEC, Calls("computed")) == "computed"
    assert log.seen["lock_timeout"] == 1
    assert await redis_client.get(lock) == b"a-stuck-process"  # never deletes another's lock


async def test_a_failing_compute_reaches_every_joined_caller_and_stores_nothing(
    redis_client: Redis,
) -> None:
    cache, log = _logged_cache(redis_client)
    joined = log.reached("join", 4)
    release = asyncio.Event()
    calls = 0

    async def failing() -> Any:
        nonlocal calls
        calls += 1
        await release.wait()
        raise LookupError("source failed")

    callers = [asyncio.create_task(cache.get_or_set(SPEC, failing)) for _ in range(5)]
    await joined.wait()
    release.set()
    results = await asyncio.gather(*callers, return_exceptions=True)
    assert all(isinstance(r, LookupError) for r in results)
    assert calls == 1
    assert await redis_client.exists(cache.key(SPEC), f"{cache.key(SPEC)}:lock") == 0


async def test_when_the_leading_caller_is_cancelled_a_joined_caller_loads_instead(
    redis_client: Redis,
) -> None:
    cache, log = _logged_cache(redis_client)
    joined = log.reached("join", 1)
    stuck = Calls("never", hold=True)
    leader = asyncio.create_task(cache.get_or_set(SPEC, stuck))
    await stuck.started.wait()
    second = Calls("from the joined caller")
    follower = asyncio.create_task(cache.get_or_set(SPEC, second))
    await joined.wait()
    leader.cancel()  # e.g. the client disconnected
    assert await follower == "from the joined caller"
    assert leader.cancelled()
    assert (stuck.count, second.count) == (1, 1)
    assert await redis_client.exists(f"{cache.key(SPEC)}:lock") == 0


# --- the memory tier ------------------------------------------------------------------------


async def test_the_memory_tier_serves_without_asking_redis(redis_client: Redis) -> None:
    spec = CacheSpec("items.featured", ttl=60, memory_ttl=5)
    cache = Cache(redis_client, CacheSettings(prefix="test"))
    await cache.get_or_set(spec, Calls("v1"))
    await redis_client.delete(cache.key(spec))  # gone from Redis, still in this process
    assert await cache.get_or_set(spec, Calls("v2")) == "v1"


async def test_another_process_sees_an_invalidation_within_the_memory_ttl(
    redis_clients: Callable[[], Redis],
) -> None:
    spec = CacheSpec("items.featured", ttl=60, memory_ttl=5)
    clock = FakeClock()
    writer = Cache(redis_clients(), CacheSettings(prefix="test"))
    reader = Cache(redis_clients(), CacheSettings(prefix="test"), clock=clock)
    assert await reader.get_or_set(spec, Calls("v1"), tags=["items"]) == "v1"
    await writer.invalidate_tags("items")
    # The reader's copy is stale for at most memory_ttl seconds, then it reads Redis again.
    assert await reader.get_or_set(spec, Calls("v2")) == "v1"
    clock.now += 5.01
    assert await reader.get_or_set(spec, Calls("v2")) == "v2"


async def test_the_invalidating_process_drops_its_memory_copy_at_once(cache: Cache) -> None:
    spec = CacheSpec("items.featured", ttl=60, memory_ttl=5)
    await cache.get_or_set(spec, Calls("v1"), tags=["items"])
    await cache.invalidate_tags("items")
    assert await cache.get_or_set(spec, Calls("v2")) == "v2"
    await cache.invalidate(cache.key(spec))
    assert await cache.get_or_set(spec, Calls("v3")) == "v3"


async def test_namespaces_without_a_memory_ttl_skip_the_memory_tier(cache: Cache) -> None:
    await cache.get_or_set(SPEC, Calls(1))
    assert len(cache.memory) == 0


# --- warming and counters -------------------------------------------------------------------


async def test_warming_stores_entries_that_later_reads_hit(cache: Cache) -> None:
    featured = CacheSpec("items.featured", ttl=300)

    async def broken() -> Any:
        raise RuntimeError("source down")

    report = await cache.warm(
        [
            WarmEntry(featured, Calls(["a", "b"]), parts={"limit": 2}, tags=["items"]),
            WarmEntry(PROFILE, Calls({"id": 7}), principal=7),
            WarmEntry(SPEC, broken),
        ]
    )
    assert (report.warmed, report.failed) == (2, 1)
    untouched = Calls(None)
    assert await cache.get_or_set(featured, untouched, parts={"limit": 2}) == ["a", "b"]
    assert await cache.get_or_set(PROFILE, untouched, principal=7) == {"id": 7}
    assert untouched.count == 0


async def test_hits_and_misses_are_counted_per_namespace_on_prometheus_counters(
    redis_client: Redis,
) -> None:
    registry = CollectorRegistry()
    hits = PromCounter("cache_hits", "hits", ["namespace"], registry=registry)
    misses = PromCounter("cache_misses", "misses", ["namespace"], registry=registry)
    cache = Cache(redis_client, CacheSettings(prefix="test"), hits=hits, misses=misses)
    for _ in range(3):
        await cache.get_or_set(SPEC, Calls(1))
    assert registry.get_sample_value("cache_hits_total", {"namespace": "items.list"}) == 2
    assert registry.get_sample_value("cache_misses_total", {"namespace": "items.list"}) == 1


async def test_hits_and_misses_may_be_counted_by_plain_callables(redis_client: Redis) -> None:
    hits: list[str] = []
    misses: list[str] = []
    cache = Cache(
        redis_client, CacheSettings(prefix="test"), hits=hits.append, misses=misses.append
    )
    await cache.get_or_set(SPEC, Calls(1))
    await cache.get_or_set(SPEC, Calls(1))
    assert (hits, misses) == (["items.list"], ["items.list"])


class _FlakyRedis(Redis):
    """The real server, behind a switch: while `down`, every command fails as if it were
    unreachable (the server keeps its data, as a partitioned or paused one does)."""

    down = False

    async def execute_command(self, *args: Any, **options: Any) -> Any:
        if self.down:
            raise RedisConnectionError("Redis is down")
        return await super().execute_command(*args, **options)  # type: ignore[no-untyped-call]


@pytest.mark.usefixtures("redis_client")  # this worker's Redis database, flushed
@pytest.mark.parametrize("by", ["tag", "key"])
async def test_an_invalidation_redis_missed_is_applied_before_the_next_read(
    redis_url: str, by: str
) -> None:
    client = cast(_FlakyRedis, _FlakyRedis.from_url(redis_url))
    clock = FakeClock()
    cache = Cache(client, CacheSettings(retry_after=5), clock=clock)
    spec = CacheSpec("profile", ttl=300)
    try:
        assert await cache.get_or_set(spec, Calls("before"), tags=["user:1"]) == "before"
        client.down = True  # a commit changed the user; its invalidation fails
        if by == "tag":
            await cache.invalidate_tags("user:1")
        else:
            await cache.invalidate(cache.key(spec, None))
        client.down = False
        clock.now += 5  # the cache tries Redis again
        assert await cache.get_or_set(spec, Calls("after"), tags=["user:1"]) == "after"
        assert await cache.get_or_set(spec, Calls("unused"), tags=["user:1"]) == "after"
    finally:
        await client.aclose()


@pytest.mark.usefixtures("redis_client")
async def test_a_missed_invalidation_reaches_other_processes_without_a_read_here(
    redis_url: str,
) -> None:
    """Another process reads Redis directly: the process that missed the invalidation retries
    it in the background, so the other one stops serving the old entry within about a second,
    not after the entry's TTL."""
    client = cast(_FlakyRedis, _FlakyRedis.from_url(redis_url))
    other_client = Redis.from_url(redis_url)
    writer = Cache(client, CacheSettings(unapplied_retry_s=0.01))
    reader = Cache(other_client)  # another API process
    spec = CacheSpec("profile", ttl=300)
    try:
        assert await reader.get_or_set(spec, Calls("before"), tags=["user:1"]) == "before"
        client.down = True
        await writer.invalidate_tags("user:1")
        retry = writer.backlog.retry
        assert retry is not None
        client.down = False
        await asyncio.wait_for(retry, timeout=10)
        assert await reader.get_or_set(spec, Calls("after"), tags=["user:1"]) == "after"
    finally:
        await client.aclose()
        await other_client.aclose()
