"""Every pitfall on real PostgreSQL and Redis: the wrong version shows the defect, the right one
does not. The measurements are the runner's own (`pitfalls/*/evidence.py`), on scratch space in
this worker's database and Redis database; no assertion is about time."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractContextManager
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
import pytest_asyncio
from sqlalchemy.ext.asyncio import AsyncSession

from patterns.db.queries import QueryCounter
from patterns.testing.plans import assert_uses_index
from pitfalls._runner import Backends, open_backends
from pitfalls.pf001_n_plus_one import evidence as pf001
from pitfalls.pf001_n_plus_one import right as pf001_right
from pitfalls.pf001_n_plus_one import wrong as pf001_wrong
from pitfalls.pf002_missing_index import evidence as pf002
from pitfalls.pf002_missing_index import right as pf002_right
from pitfalls.pf002_missing_index import wrong as pf002_wrong
from pitfalls.pf003_stale_cache import evidence as pf003
from pitfalls.pf003_stale_cache import right as pf003_right
from pitfalls.pf003_stale_cache import wrong as pf003_wrong
from pitfalls.pf004_cache_key_collision import evidence as pf004
from pitfalls.pf005_token_without_expiry import evidence as pf005
from pitfalls.pf006_weak_password_storage import evidence as pf006
from pitfalls.pf007_blocking_call_in_async import evidence as pf007
from pitfalls.pf007_blocking_call_in_async import right as pf007_right
from pitfalls.pf007_blocking_call_in_async import wrong as pf007_wrong
from pitfalls.pf008_check_then_act_inventory import evidence as pf008
from pitfalls.pf008_check_then_act_inventory import right as pf008_right
from pitfalls.pf008_check_then_act_inventory import wrong as pf008_wrong
from pitfalls.pf009_racy_rate_limiter import evidence as pf009
from pitfalls.pf010_task_inside_transaction import evidence as pf010
from pitfalls.pf010_task_inside_transaction import right as pf010_right
from pitfalls.pf010_task_inside_transaction import wrong as pf010_wrong
from reference_app.core.config import Settings
from reference_app.models.order import OrderStatus
from tests.factories import ItemFactory

pytestmark = pytest.mark.integration

QueryCount = Callable[[int], AbstractContextManager[QueryCounter]]


@pytest_asyncio.fixture(loop_scope="session")
async def backends(settings: Settings, tmp_path: Path) -> AsyncIterator[Backends]:
    """The runner's scratch schema in this worker's database, and a key prefix in its Redis."""
    async with open_backends(settings, tmp_path / "results") as b:
        yield b


# --- PF001 ---------------------------------------------------------------------------------


async def _seed_owners(session: AsyncSession, n: int) -> None:
    await ItemFactory.create_batch_async(session, n, category="books", price=1)  # one owner each
    session.expunge_all()  # nothing loaded: every answer comes from the database


@pytest.mark.allow_n_plus_one(reason="PF001's wrong version is the N+1 under measurement")
@pytest.mark.parametrize("n", [3, 30])
async def test_pf001_wrong_runs_one_query_per_user_and_right_one_in_all(
    db_session: AsyncSession, assert_num_queries: QueryCount, n: int
) -> None:
    await _seed_owners(db_session, n)
    with assert_num_queries(n + 1):
        wrong = await pf001_wrong.items_by_owner(db_session)
    db_session.expunge_all()
    with assert_num_queries(1):
        right = await pf001_right.items_by_owner(db_session)
    assert wrong == right
    assert len(right) == n


@pytest.mark.allow_n_plus_one(reason="PF001's wrong version is the N+1 under measurement")
async def test_pf001_evidence_shows_the_count_growing_only_for_wrong(backends: Backends) -> None:
    counts = {}
    for n in (10, 100):
        await pf001.seed(backends, n)
        wrong = await pf001.measure(backends, pf001_wrong.items_by_owner)
        right = await pf001.measure(backends, pf001_right.items_by_owner)
        counts[n] = (wrong.queries, right.queries)
    assert counts == {10: (11, 1), 100: (101, 1)}


# --- PF002 ---------------------------------------------------------------------------------


@pytest.mark.slow  # seconds of work: the system session runs it
async def test_pf002_without_the_index_postgresql_scans_the_table_and_with_it_uses_the_index(
    backends: Backends,
) -> None:
    wrong, right = await pf002.plans(backends)
    assert wrong.scan == "Seq Scan"
    assert wrong.index is None
    assert wrong.rows_removed > 90_000  # read and thrown away
    assert right.uses_index
    assert right.index == "ix_items_category_price"
    assert right.rows_removed == 0
    assert wrong.rows_returned == right.rows_returned == 20
    # The harness's assertion agrees, on the planner's own choice over the seeded rows.
    async with backends.engine.connect() as conn:
        args = (pf002.CATEGORY, pf002.MAX_PRICE)
        await assert_uses_index(conn, pf002_right.cheapest_in_category(*args), natural=True)
        with pytest.raises(AssertionError, match="Seq Scan on pf002_items"):
            await assert_uses_index(conn, pf002_wrong.cheapest_in_category(*args), natural=True)


# --- PF003 ---------------------------------------------------------------------------------


async def test_pf003_wrong_serves_the_old_price_after_a_committed_update(
    backends: Backends,
) -> None:
    steps, ttl_left = await pf003.scenario(backends, pf003_wrong, "wrong")
    after_update = steps[1]
    assert after_update.database == Decimal("12.50")
    assert after_update.served == Decimal("10.00")
    assert after_update.source == "cache"
    assert ttl_left > 0


async def test_pf003_right_serves_the_new_price_and_keeps_its_entry_on_rollback(
    backends: Backends,
) -> None:
    steps, _ = await pf003.scenario(backends, pf003_right, "right")
    assert [s.stale for s in steps] == [False, False, False]
    assert [s.source for s in steps] == ["database", "database", "cache"]


# --- PF004 ---------------------------------------------------------------------------------


async def test_pf004_wrong_collides_and_leaks_another_users_profile_right_does_not(
    backends: Backends,
) -> None:
    calls = await pf004.calls(backends)
    wrong, right = calls["wrong"], calls["right"]
    assert len({c.key for c in wrong}) == 2  # four answers, two keys
    items_call, bobs_profile = wrong[1], wrong[3]
    assert items_call.served == ["order of 42.00"] != items_call.expected
    assert bobs_profile.served["email"] == "alice@example.com"
    assert bobs_profile.expected["email"] == "bob@example.com"
    assert all(c.correct for c in right)
    assert len({c.key for c in right}) == 4


# --- PF005 ---------------------------------------------------------------------------------


def test_pf005_wrong_accepts_expired_and_refresh_tokens_right_refuses_them() -> None:
    results = {(p.kind.value, p.age): p for p in pf005.attempts()}
    fresh = results[("access", timedelta(seconds=5))]
    assert fresh.wrong.startswith("accepted")
    assert fresh.right.startswith("accepted")
    old = results[("access", timedelta(days=400))]
    assert old.wrong.startswith("accepted")
    assert old.right == "refused: token_expired"
    refresh = results[("refresh", timedelta(seconds=5))]
    assert refresh.wrong.startswith("accepted")
    assert refresh.right == "refused: token_wrong_type"


# --- PF006 ---------------------------------------------------------------------------------


async def test_pf006_a_dump_gives_away_plain_and_fast_hashed_passwords_not_argon2id(
    backends: Backends,
) -> None:
    plain, md5, sha1, argon2 = await pf006.attacks(backends)
    for weak in (plain, md5, sha1):
        assert weak.cracked == 4
        assert weak.distinct == 3  # unsalted: the two users sharing a password share a value
    assert plain.sample == "Sunshine1987"
    assert argon2.cracked == 0
    assert argon2.distinct == 4
    assert argon2.sample.startswith("$argon2id$")
    assert md5.rate > 100 * argon2.rate


# --- PF007 ---------------------------------------------------------------------------------


@pytest.mark.slow  # seconds of work: the system session runs it
async def test_pf007_wrong_runs_concurrent_requests_one_after_another_right_overlaps_them(
    backends: Backends,
) -> None:
    engines = (
        backends.make_sync_engine(pool_size=pf007.CONCURRENCY),
        backends.make_engine(pool_size=pf007.CONCURRENCY),
    )
    wrong = await pf007.load(pf007_wrong, *engines)
    right = await pf007.load(pf007_right, *engines)
    assert len(wrong.queries) == len(right.queries) == pf007.CONCURRENCY
    assert wrong.overlap == 1  # no two queries were ever in flight together
    assert right.overlap > 1
    assert wrong.slow_callbacks >= 1  # asyncio's debug mode flags the blocked loop


# --- PF008 ---------------------------------------------------------------------------------


async def test_pf008_wrong_oversells_under_concurrency(backends: Backends) -> None:
    sale = await pf008.sale(backends, pf008_wrong, "wrong")
    assert sale.sold > sale.stock
    assert sale.oversold > 0
    assert sale.left > 0  # and the books still show stock: the lost updates left no trace


async def test_pf008_right_sells_exactly_the_stock_under_concurrency(backends: Backends) -> None:
    sale = await pf008.sale(backends, pf008_right, "right")
    assert (sale.sold, sale.refused, sale.left) == (pf008.STOCK, pf008.BUYERS - pf008.STOCK, 0)


# --- PF009 ---------------------------------------------------------------------------------


async def test_pf009_get_then_incr_lets_a_burst_past_the_limit_the_script_does_not(
    backends: Backends,
) -> None:
    get_then_incr, _, atomic = pf009.limiters(backends)
    assert await pf009.burst(backends, get_then_incr) > pf009.BURST_LIMIT
    assert await pf009.burst(backends, atomic) == pf009.BURST_LIMIT


async def test_pf009_incr_then_expire_restarts_the_window_on_every_refused_request(
    backends: Backends,
) -> None:
    _, incr_then_expire, atomic = pf009.limiters(backends)
    assert await pf009.ttl_after_refusal(backends, incr_then_expire) > pf009.TTL_LEFT_MS
    assert 0 < await pf009.ttl_after_refusal(backends, atomic) <= pf009.TTL_LEFT_MS


# --- PF010 ---------------------------------------------------------------------------------


async def test_pf010_wrong_runs_the_task_for_a_rolled_back_order_and_too_early(
    backends: Backends,
) -> None:
    rolled_back, committed = await pf010.scenarios(backends, pf010_wrong)
    assert rolled_back.status is None
    assert [r.state for r in rolled_back.runs] == ["FAILURE"]
    assert "does not exist" in rolled_back.runs[0].result
    assert [r.state for r in committed.runs] == ["FAILURE"]
    assert committed.status == OrderStatus.PENDING  # and nothing will ever process it


async def test_pf010_right_sends_nothing_for_a_rollback_and_processes_the_commit(
    backends: Backends,
) -> None:
    rolled_back, committed = await pf010.scenarios(backends, pf010_right)
    assert rolled_back.runs == []
    assert rolled_back.status is None
    assert [r.state for r in committed.runs] == ["SUCCESS"]
    assert committed.status == OrderStatus.PROCESSED


# --- the runner ----------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.allow_n_plus_one(reason="the runner runs PF001's wrong version and repeats reads")
async def test_every_pitfall_shows_its_evidence_on_real_servers(
    settings: Settings, tmp_path: Path
) -> None:
    """`run all` on PostgreSQL + Redis: nothing skipped, every pitfall shown."""
    from rich.console import Console

    from pitfalls._runner import run_selected, select

    with (tmp_path / "out.txt").open("w") as out:
        console = Console(file=out, width=200)
        outcomes = await run_selected(select(["all"]), settings, tmp_path / "results", console)
    assert {o.pitfall.id: o.status for o in outcomes} == {
        f"PF{i:03d}": "shown" for i in range(1, 11)
    }
    results = tmp_path / "results"
    assert "Seq Scan" in (results / "PF002.md").read_text()
    assert (results / "PF001_n_plus_one.png").read_bytes().startswith(b"\x89PNG")
