"""The pitfall runner: scratch backends from the app's settings, discovery of the pitfall
packages, and the evidence printed side by side (guide: "Common Pitfalls and Solutions").

Nothing of the user's is touched. On PostgreSQL the kit's tables are created in a scratch schema
(`pitfalls_<random>`, dropped at the end; every connection's `search_path` points at it); on
SQLite in a scratch file in a temporary directory. Redis keys carry a per-run prefix and are
deleted at the end.
"""

from __future__ import annotations

import importlib
import pkgutil
import re
import shutil
import tempfile
import traceback
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from redis.asyncio import Redis
from rich.console import Console
from rich.table import Table
from sqlalchemy import Engine, create_engine, delete, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from patterns.db import is_sqlite, make_async_engine, sync_url
from pitfalls._evidence import POSTGRESQL, REDIS, SERVER_NAMES, Evidence, Pitfall
from pitfalls.catalog import PITFALLS
from reference_app.core.config import Settings
from reference_app.core.redis import make_redis
from reference_app.models import Base

DEFAULT_RESULTS = Path("results") / "pitfalls"
_PACKAGE = re.compile(r"pf\d{3}_[a-z0-9_]+")
_HINT = {
    POSTGRESQL: "KIT_DATABASE_URL=postgresql://…",
    REDIS: "KIT_REDIS_URL=redis://…",
}


def _use_schema(engine: Engine, schema: str) -> None:
    """Point every new connection's search_path at `schema` (SQLAlchemy's documented recipe:
    set outside a transaction, so a pool rollback does not undo it)."""

    @event.listens_for(engine, "connect")
    def _set_search_path(dbapi_connection: Any, _record: Any) -> None:
        autocommit = dbapi_connection.autocommit
        dbapi_connection.autocommit = True
        cursor = dbapi_connection.cursor()
        cursor.execute(f'SET SESSION search_path TO "{schema}"')
        cursor.close()
        dbapi_connection.autocommit = autocommit


@dataclass
class Backends:
    """The configured database and Redis, confined to scratch space, for one run."""

    settings: Settings
    url: str  # the scratch database's plain URL (the configured one on PostgreSQL)
    schema: str | None  # the scratch schema on PostgreSQL
    engine: AsyncEngine
    redis: Redis
    prefix: str  # every Redis key of this run starts with it
    results_dir: Path
    _engines: list[AsyncEngine | Engine] = field(default_factory=list)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @property
    def real_redis(self) -> bool:
        return self.settings.redis_url is not None

    def has(self, need: str) -> bool:
        return (need == POSTGRESQL and self.dialect == "postgresql") or (
            need == REDIS and self.real_redis
        )

    @property
    def sessionmaker(self) -> async_sessionmaker[AsyncSession]:
        return async_sessionmaker(self.engine, expire_on_commit=False)

    def key(self, *parts: object) -> str:
        return ":".join([self.prefix, *(str(p) for p in parts)])

    def confine(self, engine: Engine) -> Engine:
        """Make a sync engine made elsewhere (a Celery worker's) use the scratch schema; call
        before its first connection."""
        if self.schema:
            _use_schema(engine, self.schema)
        return engine

    def make_engine(self, *, pool_size: int) -> AsyncEngine:
        """Another async engine on the scratch database, with room for `pool_size` concurrent
        connections; disposed when the run ends."""
        engine = make_async_engine(self.url, pool_size=pool_size, max_overflow=0)
        self.confine(engine.sync_engine)
        self._engines.append(engine)
        return engine

    def make_sync_engine(self, *, pool_size: int = 5) -> Engine:
        """A sync engine (psycopg 3 / pysqlite) on the scratch database."""
        engine = self.confine(
            create_engine(sync_url(self.url), pool_size=pool_size, max_overflow=0)
        )
        self._engines.append(engine)
        return engine

    async def reset(self) -> None:
        """Empty the kit's tables, so each pitfall starts from nothing."""
        tables = Base.metadata.sorted_tables
        async with self.engine.begin() as conn:
            if self.schema:  # ids from 1 again, so the evidence reads "order 1", not "order 1114"
                names = ", ".join(f'"{t.name}"' for t in tables)
                await conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
            else:
                for table in reversed(tables):
                    await conn.execute(delete(table))
        keys = [k async for k in self.redis.scan_iter(match=f"{self.prefix}:*", count=500)]
        if keys:
            await self.redis.delete(*keys)

    async def release(self) -> None:
        """Dispose the engines made with `make_engine`/`make_sync_engine` (their connections
        count against the server's max_connections)."""
        engines, self._engines = self._engines, []
        for engine in engines:
            if isinstance(engine, AsyncEngine):
                await engine.dispose()
            else:
                engine.dispose()


@asynccontextmanager
async def open_backends(settings: Settings, results_dir: Path) -> AsyncIterator[Backends]:
    """Scratch space on the configured backends, removed on exit."""
    run = uuid.uuid4().hex[:8]
    tmp: Path | None = None
    schema: str | None = None
    if is_sqlite(settings.database_url):
        tmp = Path(tempfile.mkdtemp(prefix="kit-pitfalls-"))
        url = f"sqlite:///{tmp / 'pitfalls.db'}"
    else:
        url = make_url(settings.database_url).render_as_string(hide_password=False)
        schema = f"pitfalls_{run}"
    engine = make_async_engine(url, pool_size=10, max_overflow=10)
    if schema:
        _use_schema(engine.sync_engine, schema)
    redis = make_redis(settings)
    backends = Backends(settings, url, schema, engine, redis, f"pitfalls:{run}", results_dir)
    try:
        async with engine.begin() as conn:
            if schema:
                await conn.execute(text(f'CREATE SCHEMA "{schema}"'))
            await conn.run_sync(Base.metadata.create_all)
        yield backends
    finally:
        try:
            if schema:
                async with engine.begin() as conn:
                    await conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
            keys = [k async for k in redis.scan_iter(match=f"{backends.prefix}:*", count=500)]
            if keys:
                await redis.delete(*keys)
        finally:
            await backends.release()
            await engine.dispose()
            await redis.aclose()
            if tmp is not None:
                shutil.rmtree(tmp, ignore_errors=True)


# --- discovery -----------------------------------------------------------------------------

Measure = Callable[[Backends], Awaitable[Evidence]]


@dataclass(frozen=True)
class Registered:
    pitfall: Pitfall
    package: str  # e.g. "pitfalls.pf001_n_plus_one"

    def measure(self) -> Measure:
        module = importlib.import_module(f"{self.package}.evidence")
        run: Measure = module.run
        return run


def discover() -> list[Registered]:
    """Every pitfall in `pitfalls/catalog.toml`, in ID order; a `pitfalls/pfNNN_*` package the
    catalogue does not name (or an entry without its package) is an error, not a silent skip."""
    import pitfalls

    packages = {
        f"pitfalls.{info.name}"
        for info in pkgutil.iter_modules(pitfalls.__path__)
        if info.ispkg and _PACKAGE.fullmatch(info.name)
    }
    named = {p.package for p in PITFALLS}
    if packages != named:
        raise RuntimeError(
            f"pitfalls/catalog.toml and the pitfall packages disagree: {sorted(packages ^ named)}"
        )
    ids = [p.id for p in PITFALLS]
    if len(set(ids)) != len(ids):
        raise RuntimeError(f"duplicate pitfall IDs: {sorted(ids)}")
    return [Registered(p, p.package) for p in sorted(PITFALLS, key=lambda p: p.id)]


def select(ids: Sequence[str]) -> list[Registered]:
    """The pitfalls named (case-insensitive), or all of them for `all`."""
    every = discover()
    if any(i.lower() == "all" for i in ids):
        return every
    by_id = {r.pitfall.id: r for r in every}
    unknown = [i for i in ids if i.upper() not in by_id]
    if unknown:
        raise KeyError(f"unknown pitfall {', '.join(unknown)}; known: {', '.join(by_id)}")
    return [by_id[i.upper()] for i in ids]


# --- running and printing ------------------------------------------------------------------


@dataclass
class Outcome:
    pitfall: Pitfall
    status: str  # "shown", "not shown", "skipped", "error"
    detail: str
    evidence: Evidence | None = None


def missing_servers(pitfall: Pitfall, backends: Backends) -> list[str]:
    return [need for need in sorted(pitfall.needs) if not backends.has(need)]


def evidence_table(pitfall: Pitfall, evidence: Evidence) -> Table:
    table = Table(
        title=f"{pitfall.id} {pitfall.title}",
        caption=evidence.verdict,
        title_justify="left",
        caption_justify="left",
    )
    for column in evidence.columns:
        table.add_column(column)
    for row in evidence.rows:
        table.add_row(*(str(cell) for cell in row))
    return table


def evidence_markdown(pitfall: Pitfall, evidence: Evidence, backends: Backends) -> str:
    """The evidence as a Markdown table, ready to paste into the pitfall's page."""
    lines = [
        f"| {' | '.join(evidence.columns)} |",
        f"|{'|'.join('---' for _ in evidence.columns)}|",
    ]
    for row in evidence.rows:
        lines.append("| " + " | ".join(str(c).replace("|", "\\|") for c in row) + " |")
    lines += ["", evidence.verdict]
    for note in evidence.notes:
        title, _, body = note.partition("\n")
        lines += ["", title] + (["", "```text", body, "```"] if body else [])
    redis = "Redis" if backends.real_redis else "fakeredis"
    lines += [
        "",
        f"*Measured by `python -m pitfalls run {pitfall.id}` on {backends.dialect} + {redis}.*",
    ]
    return "\n".join(lines) + "\n"


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


async def run_selected(
    selected: Sequence[Registered], settings: Settings, results_dir: Path, console: Console
) -> list[Outcome]:
    outcomes: list[Outcome] = []
    async with open_backends(settings, results_dir) as backends:
        redis = "Redis" if backends.real_redis else "fakeredis (in-process)"
        where = f"schema {backends.schema}" if backends.schema else "a scratch SQLite file"
        console.print(f"[bold]pitfalls[/]: {backends.dialect} ({where}) + {redis}")
        for entry in selected:
            pitfall = entry.pitfall
            missing = missing_servers(pitfall, backends)
            if missing:
                names = " and ".join(f"a real {SERVER_NAMES[m]}" for m in missing)
                hints = ", ".join(_HINT[m] for m in missing)
                detail = f"needs {names} to show its evidence (set {hints})"
                console.print(f"\n[yellow]{pitfall.id} {pitfall.title}[/]: skipped, {detail}")
                outcomes.append(Outcome(pitfall, "skipped", detail))
                continue
            try:
                await backends.reset()
                evidence = await entry.measure()(backends)
            except Exception:
                console.print(f"\n[red]{pitfall.id} {pitfall.title}: error[/]")
                console.print(traceback.format_exc())
                outcomes.append(Outcome(pitfall, "error", "raised; see the traceback above"))
                continue
            finally:
                await backends.release()
            console.print()
            console.print(evidence_table(pitfall, evidence))
            console.print(f"  page: {pitfall.url}")
            for note in evidence.notes:
                console.print(f"  [dim]{note}[/]")
            md = _write(
                results_dir / f"{pitfall.id}.md", evidence_markdown(pitfall, evidence, backends)
            )
            for artifact in [*evidence.artifacts, md]:
                console.print(f"  written: {artifact}")
            status = "shown" if evidence.shown else "not shown"
            outcomes.append(Outcome(pitfall, status, evidence.verdict, evidence))
    if len(outcomes) > 1:
        console.print()
        console.print(summary_table(outcomes))
    return outcomes


def summary_table(outcomes: Sequence[Outcome]) -> Table:
    colour = {"shown": "green", "not shown": "red", "skipped": "yellow", "error": "red"}
    table = Table(title="Summary", title_justify="left")
    table.add_column("ID")
    table.add_column("pitfall")
    table.add_column("evidence")
    table.add_column("detail")
    for o in outcomes:
        c = colour[o.status]
        table.add_row(o.pitfall.id, o.pitfall.title, f"[{c}]{o.status}[/]", o.detail)
    return table


def list_table(entries: Sequence[Registered]) -> Table:
    table = Table(title="Pitfalls", title_justify="left")
    for column in ("ID", "title", "summary", "needs"):
        table.add_column(column)
    # Whole addresses, never cut: they are pasted into reviews.
    longest = max((len(e.pitfall.url) for e in entries), default=4)
    table.add_column("page", no_wrap=True, min_width=longest)
    for e in entries:
        p = e.pitfall
        needs = ", ".join(SERVER_NAMES[n] for n in sorted(p.needs)) or "-"
        table.add_row(p.id, p.title, p.summary, needs, p.url)
    return table
