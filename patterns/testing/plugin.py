"""The pytest plugin: servers picked once per run, a database per worker, a transaction per test.

* Servers: `backends.choose` (environment URLs → testcontainers → local binaries), started on
  first use by whichever process needs them first (under a file lock shared by xdist workers)
  and stopped by the controlling process when the run ends.
* PostgreSQL: a template database migrated once per run, cloned into one database per xdist
  worker; each test runs in an outer transaction that is rolled back
  (`join_transaction_mode="create_savepoint"`, so the code under test may commit).
* Redis: one logical database per process, held under a lease for the whole session (a file
  lock per server and database in the temporary directory, taken without waiting, released by
  the OS when the process ends), so no two processes (workers of this run, or of another run on
  the same server) share one; flushed before and after each test. See docs/harness.md.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
import pytest_asyncio
from filelock import FileLock, Timeout
from psycopg import sql
from redis.asyncio import Redis
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from patterns.db.engine import make_async_engine
from patterns.db.queries import QueryCounter
from patterns.testing import backends, hookspecs, nplusone, plans
from patterns.testing.nplusone import pytest_addoption as pytest_addoption
from patterns.testing.nplusone import pytest_runtest_call as pytest_runtest_call
from patterns.testing.nplusone import pytest_unconfigure as pytest_unconfigure
from patterns.testing.plans import QueryPlan
from patterns.testing.queries import QueryAssertions

RUN_ID = pytest.StashKey[str]()
# Logical databases 1..15: 0 is left to whatever else uses the server.
_REDIS_DBS = range(1, 16)
_REDIS_LEASE_WAIT_S = 120.0


@dataclass(frozen=True)
class KitServices:
    """What a test process got: the servers, its own database and its own Redis database."""

    postgres: backends.Service
    redis: backends.Service
    database_url: str  # plain postgresql:// URL of this worker's database
    redis_url: str  # redis:// URL of this worker's logical database


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    pluginmanager.add_hookspecs(hookspecs)


def _worker_id(config: pytest.Config) -> str:
    workerinput = getattr(config, "workerinput", None)
    return str(workerinput["workerid"]) if workerinput else "main"


def _is_controller(config: pytest.Config) -> bool:
    return not hasattr(config, "workerinput")


def pytest_configure(config: pytest.Config) -> None:
    workerinput = getattr(config, "workerinput", None)
    if workerinput and "kit_run_id" in workerinput:
        config.stash[RUN_ID] = workerinput["kit_run_id"]
    else:
        config.stash[RUN_ID] = uuid.uuid4().hex[:10]
    config.addinivalue_line("markers", "kit_services: the test needs real PostgreSQL and Redis")
    nplusone.configure(config)


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """xdist: every worker shares the controller's run id, hence its servers and template."""
    node.workerinput["kit_run_id"] = node.config.stash[RUN_ID]


def _shared_dir(config: pytest.Config) -> Path:
    path = Path(tempfile.gettempdir()) / f"kit-harness-{config.stash[RUN_ID]}"
    path.mkdir(mode=0o700, exist_ok=True)
    return path


def _docker_answers() -> bool:
    try:
        import docker

        client = docker.from_env(timeout=2)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except Exception:
        return False


def pytest_report_header(config: pytest.Config) -> list[str]:
    lines = []
    for kind, var in (("postgres", backends.POSTGRES_URL_ENV), ("redis", backends.REDIS_URL_ENV)):
        svc = backends.from_environment(kind)
        if svc:
            lines.append(f"kit harness: {svc.describe()}")
        elif _docker_answers():
            lines.append(f"kit harness: {kind}: {var} unset, Docker answers → testcontainers")
        else:
            lines.append(
                f"kit harness: {kind}: {var} unset, no Docker engine → local binaries, "
                "started on first use"
            )
    lines.append(nplusone.report_header(config))
    return lines


# --- servers, shared by every process of the run ----------------------------------------------


def _admin_connect(server_url: str) -> psycopg.Connection[Any]:
    return psycopg.connect(server_url, autocommit=True, connect_timeout=10)


def _db_url(server_url: str, name: str) -> str:
    return make_url(server_url).set(database=name).render_as_string(hide_password=False)


def _create_database(server_url: str, name: str, template: str | None = None) -> None:
    with _admin_connect(server_url) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )
        if template:
            conn.execute(
                sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                    sql.Identifier(name), sql.Identifier(template)
                )
            )
        else:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def _drop_database(server_url: str, name: str) -> None:
    try:
        with _admin_connect(server_url) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
    except psycopg.OperationalError:
        pass  # the server is already gone


def _template_name(config: pytest.Config) -> str:
    return f"kit_{config.stash[RUN_ID]}_tpl"


def _ensure_servers(config: pytest.Config) -> tuple[backends.Service, backends.Service]:
    """Start (or join) this run's servers and template database, once per run."""
    shared = _shared_dir(config)
    state_file = shared / "state.json"
    with FileLock(str(shared / "lock")):
        if state_file.exists():
            state = json.loads(state_file.read_text())
            return (
                backends.Service.from_json(state["postgres"]),
                backends.Service.from_json(state["redis"]),
            )
        started: list[backends.Service] = []
        try:
            pg, pg_skipped = backends.choose("postgres")
            started.append(pg)
            rd, rd_skipped = backends.choose("redis")
            started.append(rd)
            template = _template_name(config)
            _create_database(pg.url, template)
            config.hook.pytest_kit_setup_database(url=_db_url(pg.url, template))
        except BaseException:
            for svc in started:
                backends.stop(svc)
            raise
        state_file.write_text(
            json.dumps(
                {
                    "postgres": pg.to_json(),
                    "redis": rd.to_json(),
                    "skipped": {"postgres": pg_skipped, "redis": rd_skipped},
                    "template": template,
                }
            )
        )
        return pg, rd


@contextmanager
def redis_db_lease(server_url: str, *, wait_s: float = _REDIS_LEASE_WAIT_S) -> Iterator[int]:
    """A logical database of the Redis at `server_url` that no other process holds, for as long
    as the context lasts.

    The leases are lock files shared by every run on this machine (one per server address and
    database); a process that dies releases its lock with it. When all are held, waits up to
    `wait_s` for one to be released."""
    address = server_url.split("://", 1)[1].split("/", 1)[0]
    leases = Path(tempfile.gettempdir()) / "kit-redis-leases"
    leases.mkdir(mode=0o777, exist_ok=True)
    name = address.rsplit("@", 1)[-1].replace(":", "_")  # host_port, never a password
    deadline = time.monotonic() + wait_s
    while True:
        for index in _REDIS_DBS:
            lock = FileLock(str(leases / f"{name}-db{index}.lock"))
            try:
                lock.acquire(timeout=0)
            except Timeout:
                continue
            try:
                yield index
            finally:
                lock.release()
            return
        if time.monotonic() > deadline:
            raise RuntimeError(
                f"every Redis logical database of {address} is leased by another test process; "
                f"see {leases}"
            )
        time.sleep(0.2)  # polling for a lease another process holds; no event to wait on


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """The controller drops the template and stops the servers the harness started."""
    config = session.config
    if not _is_controller(config) or RUN_ID not in config.stash:
        return
    shared = Path(tempfile.gettempdir()) / f"kit-harness-{config.stash[RUN_ID]}"
    state_file = shared / "state.json"
    if not state_file.exists():
        return
    state = json.loads(state_file.read_text())
    pg = backends.Service.from_json(state["postgres"])
    rd = backends.Service.from_json(state["redis"])
    config.stash[_SUMMARY] = [pg.describe(), rd.describe()]
    _drop_database(pg.url, state["template"])
    for svc in (pg, rd):
        backends.stop(svc)
    shutil.rmtree(shared, ignore_errors=True)


_SUMMARY = pytest.StashKey[list[str]]()


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    lines = config.stash.get(_SUMMARY, None)
    if lines:
        terminalreporter.write_sep("-", "kit harness")
        for line in lines:
            terminalreporter.write_line(f"used {line}")


# --- fixtures ------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def kit_services(request: pytest.FixtureRequest) -> Iterator[KitServices]:
    """This process's servers, database and Redis database (started on first use)."""
    config = request.config
    pg, rd = _ensure_servers(config)
    worker = _worker_id(config)
    db_name = f"kit_{config.stash[RUN_ID]}_{worker}"
    with FileLock(str(_shared_dir(config) / "lock")):  # one clone of the template at a time
        _create_database(pg.url, db_name, template=_template_name(config))
    base = rd.url.split("://", 1)[1].split("/", 1)[0]
    with redis_db_lease(rd.url) as redis_db:
        yield KitServices(pg, rd, _db_url(pg.url, db_name), f"redis://{base}/{redis_db}")
    _drop_database(pg.url, db_name)


@pytest.fixture
def scratch_database(kit_services: KitServices) -> Iterator[str]:
    """A new, empty database on the run's server (plain URL), dropped after the test: for tests
    that migrate from nothing or cut every connection."""
    name = f"kit_scratch_{uuid.uuid4().hex[:10]}"
    _create_database(kit_services.postgres.url, name)
    yield _db_url(kit_services.postgres.url, name)
    _drop_database(kit_services.postgres.url, name)


@pytest.fixture(scope="session")
def database_url(kit_services: KitServices) -> str:
    """Plain `postgresql://` URL of this worker's migrated database."""
    return kit_services.database_url


@pytest.fixture(scope="session")
def redis_url(kit_services: KitServices) -> str:
    """`redis://` URL of this worker's logical database."""
    return kit_services.redis_url


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def db_engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = make_async_engine(database_url, pool_size=5, max_overflow=20)
    yield engine
    await engine.dispose()


@pytest_asyncio.fixture(loop_scope="session")
async def db_session(db_engine: AsyncEngine) -> AsyncIterator[AsyncSession]:
    """A session inside an outer transaction that is rolled back after the test.

    `commit()` in the code under test releases a SAVEPOINT instead of committing, so the test
    sees committed-looking behaviour and the next test sees none of it.
    """
    async with db_engine.connect() as conn:
        outer = await conn.begin()
        session = AsyncSession(
            bind=conn, join_transaction_mode="create_savepoint", expire_on_commit=False
        )
        try:
            yield session
        finally:
            await session.close()
            if outer.is_active:
                await outer.rollback()


@pytest_asyncio.fixture(loop_scope="session")
async def committed_db(db_engine: AsyncEngine) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """Real commits, visible across connections (concurrency, Celery); tables emptied after."""
    yield async_sessionmaker(db_engine, expire_on_commit=False)
    await truncate_all(db_engine)


async def truncate_all(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        rows = await conn.execute(
            text(
                "SELECT quote_ident(tablename) FROM pg_tables WHERE schemaname = 'public' "
                "AND tablename <> 'alembic_version'"
            )
        )
        tables = [r[0] for r in rows]
        if tables:
            await conn.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))


@pytest_asyncio.fixture(loop_scope="session")
async def redis_client(redis_url: str) -> AsyncIterator[Redis]:
    """This worker's Redis database, empty at the start and the end of the test."""
    client = Redis.from_url(redis_url)
    await client.flushdb()
    try:
        yield client
    finally:
        await client.flushdb()
        await client.aclose()


@pytest.fixture
def assert_num_queries(
    db_engine: AsyncEngine,
) -> Callable[[int], AbstractContextManager[QueryCounter]]:
    """`with assert_num_queries(2): ...` — exactly n statements (SAVEPOINTs not counted)."""
    return QueryAssertions(db_engine).exactly


@pytest.fixture
def assert_max_queries(
    db_engine: AsyncEngine,
) -> Callable[[int], AbstractContextManager[QueryCounter]]:
    """`with assert_max_queries(3): ...` — at most n statements."""
    return QueryAssertions(db_engine).at_most


IndexAssertion = Callable[..., Awaitable[QueryPlan]]


@pytest_asyncio.fixture(loop_scope="session")
async def assert_uses_index(db_session: AsyncSession) -> IndexAssertion:
    """`await assert_uses_index(stmt, "ix_name")`: the plan on the test's own connection (so it
    sees the test's rows and DDL) reads an index; see `patterns.testing.plans`."""
    conn = await db_session.connection()

    async def check(
        statement: Any, index: str | None = None, *, natural: bool = False
    ) -> QueryPlan:
        return await plans.assert_uses_index(conn, statement, index, natural=natural)

    return check


__all__ = ["IndexAssertion", "KitServices", "redis_db_lease", "truncate_all"]
