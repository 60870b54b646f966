"""The local-binaries backend really starts and stops PostgreSQL and Redis (as non-root)."""

from __future__ import annotations

import psycopg
import pytest
import redis

from patterns.testing import backends

pytestmark = pytest.mark.slow


def test_local_postgres_starts_answers_and_stops() -> None:
    if not (backends.find_postgres_bin("initdb") and backends.find_postgres_bin("pg_ctl")):
        pytest.fail("PostgreSQL server binaries are required for this test (initdb, pg_ctl)")
    svc = backends.local_postgres()
    try:
        assert svc.backend == "local"
        with psycopg.connect(svc.url, connect_timeout=5) as conn:
            row = conn.execute("SHOW server_version_num").fetchone()
            assert row is not None
            assert int(row[0]) >= 120000
            user = conn.execute("SELECT current_user").fetchone()
            assert user == ("postgres",)
    finally:
        backends.stop(svc)
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(svc.url, connect_timeout=2)


def test_local_redis_starts_answers_and_stops() -> None:
    svc = backends.local_redis()
    try:
        client = redis.Redis.from_url(svc.url, socket_timeout=2)
        assert client.ping()
        client.close()
    finally:
        backends.stop(svc)
    with pytest.raises(redis.ConnectionError):
        redis.Redis.from_url(svc.url, socket_connect_timeout=1).ping()
