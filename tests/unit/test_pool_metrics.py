"""The pool gauges (patterns.observability.metrics.PoolMetrics) follow checkouts and checkins."""

from __future__ import annotations

from pathlib import Path

from prometheus_client import CollectorRegistry
from sqlalchemy import text

from patterns.db import make_async_engine
from patterns.observability.metrics import PoolMetrics


async def test_checked_out_gauge_counts_connections_in_use_and_returns_to_zero(
    tmp_path: Path,
) -> None:
    registry = CollectorRegistry()
    metrics = PoolMetrics(registry)
    assert registry.get_sample_value("db_pool_checked_out_connections", {"pool": "app"}) is None
    engine = make_async_engine(f"sqlite:///{tmp_path / 'pool.db'}")
    metrics.track(engine)

    def in_use() -> float | None:
        return registry.get_sample_value("db_pool_checked_out_connections", {"pool": "app"})

    try:
        assert in_use() == 0
        async with engine.connect() as first, engine.connect() as second:
            await first.execute(text("SELECT 1"))
            await second.execute(text("SELECT 1"))
            assert in_use() == 2
        assert in_use() == 0
        pool_size = engine.sync_engine.pool.size()  # type: ignore[attr-defined]
        assert registry.get_sample_value("db_pool_size_connections", {"pool": "app"}) == pool_size
        # Two connections opened, both within the pool's size: no overflow.
        labels = {"pool": "app"}
        assert registry.get_sample_value("db_pool_connections_opened_total", labels) == 2
        assert registry.get_sample_value("db_pool_overflow_connections", labels) == 0
        async with engine.connect() as again:  # a returned connection is reused
            await again.execute(text("SELECT 1"))
        assert registry.get_sample_value("db_pool_connections_opened_total", labels) == 2
    finally:
        await engine.dispose()


async def test_overflow_gauge_counts_connections_past_the_pool_size(tmp_path: Path) -> None:
    registry = CollectorRegistry()
    metrics = PoolMetrics(registry)
    engine = make_async_engine(f"sqlite:///{tmp_path / 'pool.db'}")
    metrics.track(engine)
    labels = {"pool": "app"}
    size = engine.sync_engine.pool.size()  # type: ignore[attr-defined]
    connections = [await engine.connect() for _ in range(size + 2)]
    try:
        for conn in connections:
            await conn.execute(text("SELECT 1"))
        assert registry.get_sample_value("db_pool_overflow_connections", labels) == 2
    finally:
        for conn in connections:
            await conn.close()
        await engine.dispose()
    assert registry.get_sample_value("db_pool_overflow_connections", labels) == 0
