"""The kit's test harness: real PostgreSQL and Redis, isolated per test (a pytest plugin).

Loaded through the `pytest11` entry point `kit`. Fixtures: `kit_services`, `database_url`,
`redis_url`, `db_engine`, `db_session`, `committed_db`, `redis_client`, `assert_num_queries`,
`assert_max_queries`. Helpers: `AsyncFactory` (factory-boy on an async session), `make_client`,
`wait_until`/`wait_until_async` (a bounded poll) and `FakeClock`. Hook for the project:
`pytest_kit_setup_database(url)` builds the schema once per run in a template database (run your
migrations there).
"""

from patterns.testing.backends import POSTGRES_URL_ENV, REDIS_URL_ENV, NoBackendError, Service
from patterns.testing.client import make_client
from patterns.testing.factories import AsyncFactory
from patterns.testing.queries import QueryAssertions
from patterns.testing.waiting import FakeClock, wait_until, wait_until_async

__all__ = [
    "POSTGRES_URL_ENV",
    "REDIS_URL_ENV",
    "AsyncFactory",
    "FakeClock",
    "NoBackendError",
    "QueryAssertions",
    "Service",
    "make_client",
    "wait_until",
    "wait_until_async",
]
