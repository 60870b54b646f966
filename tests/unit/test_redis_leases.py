"""The harness never gives two test processes one Redis logical database (docs/harness.md)."""

from __future__ import annotations

import multiprocessing
from contextlib import ExitStack

import pytest

from patterns.testing.backends import free_port
from patterns.testing.plugin import redis_db_lease


def _server() -> str:
    # A port no server listens on: leases are taken on the address, never by connecting.
    return f"redis://127.0.0.1:{free_port()}/0"


def test_fifteen_holders_get_fifteen_databases_and_never_zero() -> None:
    server = _server()
    with ExitStack() as stack:
        held = [stack.enter_context(redis_db_lease(server)) for _ in range(15)]
    assert sorted(held) == list(range(1, 16))


def test_a_sixteenth_holder_waits_then_fails_instead_of_sharing() -> None:
    server = _server()
    with ExitStack() as stack:
        for _ in range(15):
            stack.enter_context(redis_db_lease(server))
        with pytest.raises(RuntimeError, match="leased by another test process"):
            stack.enter_context(redis_db_lease(server, wait_s=0))


def test_a_released_lease_is_taken_again() -> None:
    server = _server()
    with redis_db_lease(server) as first:
        pass
    with redis_db_lease(server) as again:
        assert again == first


def _hold_in_child(server: str, taken: multiprocessing.Queue[int], done: object) -> None:
    with redis_db_lease(server) as index:
        taken.put(index)
        done.wait(10)  # type: ignore[attr-defined]


def test_another_process_gets_another_database() -> None:
    server = _server()
    ctx = multiprocessing.get_context("spawn")
    taken: multiprocessing.Queue[int] = ctx.Queue()
    done = ctx.Event()
    child = ctx.Process(target=_hold_in_child, args=(server, taken, done))
    child.start()
    try:
        theirs = taken.get(timeout=30)
        with redis_db_lease(server) as ours:
            assert ours != theirs
    finally:
        done.set()
        child.join(10)
