"""The kit's test harness: real PostgreSQL and Redis, isolated per test (a pytest plugin).

Loaded through the `pytest11` entry point `kit`. Fixtures: `kit_services`, `database_url`,
`redis_url`, `db_engine`, `db_session`, `committed_db`, `redis_client`, `assert_num_queries`,
`assert_max_queries`, `assert_uses_index` (PF002). While tests run, N+1 queries are reported
(`--n-plus-one=off|warn|error`, marker `allow_n_plus_one`; PF001). Helpers: `AsyncFactory`
(factory-boy on an async session), `make_client`, `wait_until`/`wait_until_async` (a bounded
poll) and `FakeClock`. Hook for the project: `pytest_kit_setup_database(url)` builds the schema
once per run in a template database (run your migrations there).
"""

from patterns.testing.backends import POSTGRES_URL_ENV, REDIS_URL_ENV, NoBackendError, Service
from patterns.testing.client import make_client
from patterns.testing.factories import AsyncFactory
from patterns.testing.nplusone import NPlusOneDetector, NPlusOneError, NPlusOneWarning
from patterns.testing.plans import QueryPlan, assert_uses_index, explain
from patterns.testing.queries import QueryAssertions
from patterns.testing.waiting import FakeClock, wait_until, wait_until_async

__all__ = [
    "POSTGRES_URL_ENV",
    "REDIS_URL_ENV",
    "AsyncFactory",
    "FakeClock",
    "NPlusOneDetector",
    "NPlusOneError",
    "NPlusOneWarning",
    "NoBackendError",
    "QueryAssertions",
    "QueryPlan",
    "Service",
    "assert_uses_index",
    "explain",
    "make_client",
    "wait_until",
    "wait_until_async",
]
