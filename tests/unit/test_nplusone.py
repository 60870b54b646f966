"""N+1 detection while tests run (`patterns.testing.nplusone`): PF001's wrong version is caught
and its right version is not, on the embedded SQLite; the pytest option, ini and marker."""

from __future__ import annotations

from pathlib import Path

import pytest

from patterns.db import Database, session_scope
from patterns.testing.nplusone import NPlusOneDetector, default_is_application, normalise
from pitfalls.pf001_n_plus_one import right as pf001_right
from pitfalls.pf001_n_plus_one import wrong as pf001_wrong
from reference_app.models import Item, User

pytest_plugins = ("pytester",)

ROOT = Path(__file__).resolve().parents[2]


def test_normalise_sets_parameters_aside() -> None:
    assert normalise("SELECT a FROM t WHERE id = $1 AND x IN ($2, $3,\n $4)") == (
        "SELECT a FROM t WHERE id = ? AND x IN (?)"
    )
    assert normalise("SELECT a FROM t WHERE id = %(id_1)s") == normalise(
        "SELECT a FROM t WHERE id = %(id_2)s"
    )
    assert normalise("SELECT a::text FROM t WHERE id = :id") == "SELECT a::text FROM t WHERE id = ?"


async def _owners(database: Database, n: int) -> None:
    async with session_scope(database.sessionmaker) as session:
        for i in range(n):
            user = User(email=f"owner{i}@example.com", hashed_password="-")
            user.items = [Item(title=f"item {i}", category="books", price=1)]
            session.add(user)


def _detector(threshold: int = 5) -> NPlusOneDetector:
    detector = NPlusOneDetector(threshold, default_is_application(ROOT))
    detector.install()
    return detector


async def _run(database: Database, detector: NPlusOneDetector, version: object) -> list[str]:
    async with database.sessionmaker() as session:
        with detector.watching() as found:
            await version.items_by_owner(session)  # type: ignore[attr-defined]
    return [r.describe() for r in found]


@pytest.mark.allow_n_plus_one(reason="the detector under test watches this N+1 itself")
async def test_pf001_wrong_is_caught_with_its_sql_and_line_and_right_is_not(
    database: Database,
) -> None:
    await _owners(database, 6)
    detector = _detector()
    try:
        async with database.sessionmaker() as session:
            with detector.watching() as found:
                await pf001_wrong.items_by_owner(session)
        assert len(found) == 1
        repeat = found[0]
        assert repeat.count == 6
        assert repeat.issued_at.endswith("pf001_n_plus_one/wrong.py:17 in items_by_owner")
        assert repeat.function.startswith("items_by_owner() (")
        assert repeat.statement.startswith("SELECT items.title FROM items WHERE items.owner_id")
        assert await _run(database, detector, pf001_right) == []
    finally:
        detector.uninstall()


@pytest.mark.allow_n_plus_one(reason="the detector under test watches this N+1 itself")
async def test_threshold_is_configurable(database: Database) -> None:
    await _owners(database, 4)
    default, low = _detector(), _detector(threshold=4)
    try:
        assert await _run(database, default, pf001_wrong) == []
        assert len(await _run(database, low, pf001_wrong)) == 1
    finally:
        default.uninstall()
        low.uninstall()
    with pytest.raises(ValueError, match="at least 2"):
        NPlusOneDetector(1, default_is_application(ROOT))


async def test_separate_calls_are_not_an_n_plus_one(database: Database) -> None:
    """Six requests that run one query each are six frames: nothing repeats within one."""
    await _owners(database, 2)
    detector = _detector(threshold=2)
    try:
        with detector.watching() as found:
            for _ in range(6):
                async with database.sessionmaker() as session:
                    await pf001_right.items_by_owner(session)
        assert found == []
    finally:
        detector.uninstall()


@pytest.mark.allow_n_plus_one(reason="the N+1 runs outside the detector's block on purpose")
async def test_only_the_watched_block_counts(database: Database) -> None:
    await _owners(database, 6)
    detector = _detector()
    try:
        async with database.sessionmaker() as session:
            await pf001_wrong.items_by_owner(session)
            with detector.watching() as found:
                pass
        assert found == []
    finally:
        detector.uninstall()


# --- the pytest option, ini and marker (an inner pytest run on a tiny app) -------------------

APP = """
from sqlalchemy import create_engine, text

engine = create_engine("sqlite://")


def titles(n):
    out = []
    with engine.connect() as conn:
        ids = [row[0] for row in conn.execute(text("SELECT 1 UNION SELECT 2 UNION SELECT 3"))]
        for i in ids * n:
            out.append(conn.execute(text("SELECT :i AS t"), {"i": i}).scalar())
    return out
"""

TESTS = """
import pytest

from app import titles


def test_many():
    assert len(titles(2)) == 6


@pytest.mark.allow_n_plus_one(reason="an export walks every row on purpose")
def test_allowed():
    assert len(titles(2)) == 6


def test_few():
    assert len(titles(1)) == 3
"""


INNER = ("-p", "no:randomly", "-p", "no:asyncio")


@pytest.fixture
def inner(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makepyfile(app=APP, test_inner=TESTS)
    pytester.syspathinsert()
    return pytester


def test_error_mode_fails_the_test_with_the_sql_and_the_line(inner: pytest.Pytester) -> None:
    result = inner.runpytest("--n-plus-one=error", *INNER)
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*NPlusOneError: N+1: the same SELECT 6× in one call of titles()*",
            "*issued at app.py:11 in titles*",
            "*SQL: SELECT ? AS t*",
        ]
    )
    result.stdout.fnmatch_lines(["FAILED test_inner.py::test_many - *"])


def test_warn_mode_warns_and_off_is_silent(inner: pytest.Pytester) -> None:
    warned = inner.runpytest("--n-plus-one=warn", *INNER)
    warned.assert_outcomes(passed=3, warnings=1)
    warned.stdout.fnmatch_lines(["*NPlusOneWarning: N+1: the same SELECT 6×*"])
    silent = inner.runpytest(*INNER)
    silent.assert_outcomes(passed=3)
    silent.stdout.fnmatch_lines(["kit harness: N+1 detection off"])


def test_ini_and_threshold_option(inner: pytest.Pytester) -> None:
    inner.makeini("[pytest]\nn_plus_one = error\nn_plus_one_threshold = 3\n")
    result = inner.runpytest(*INNER)
    result.assert_outcomes(passed=1, failed=2)  # test_few repeats 3×: the threshold
    result.stdout.fnmatch_lines(["kit harness: N+1 detection error, threshold 3"])
    relaxed = inner.runpytest(*INNER, "--n-plus-one-threshold=10")
    relaxed.assert_outcomes(passed=3)
    bad = inner.runpytest(*INNER, "-o", "n_plus_one=loud")
    assert bad.ret == pytest.ExitCode.USAGE_ERROR


def test_one_call_that_runs_a_statement_many_times_is_not_an_n_plus_one(
    inner: pytest.Pytester,
) -> None:
    """A library's own loop (reflection, batched loads) behind one call of the app's code."""
    inner.makepyfile(
        lib_loop="""
        from sqlalchemy import create_engine, text

        engine = create_engine("sqlite://")


        def one_call():
            with engine.connect() as conn:
                return conn.execute(text("SELECT 1")).scalar()
        """,
        test_lib="""
        from unittest import mock

        import lib_loop


        def test_library_repeats_inside_one_call():
            with lib_loop.engine.connect() as conn:
                real = conn.execute
                def many(stmt, *a, **k):
                    for _ in range(6):
                        result = real(stmt, *a, **k)
                    return result
                with mock.patch.object(lib_loop.engine, "connect") as connect:
                    connect.return_value.__enter__.return_value.execute = many
                    assert lib_loop.one_call() == 1
        """,
    )
    result = inner.runpytest("--n-plus-one=error", "test_lib.py", *INNER)
    result.assert_outcomes(passed=1)
