"""`python -m reference_app <command>`: the app's CLI (docs/quick-start.md, "Next commands").

Every command reads the same `KIT_*` settings as the app (reference_app/core/config.py).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

from patterns.db import Database
from reference_app.core.config import Settings, get_settings

T = TypeVar("T")


def _migrate(args: argparse.Namespace) -> int:
    from reference_app.core import migrations

    migrations.upgrade(revision=args.revision)
    return 0


def _upgrade(settings: Settings) -> None:
    """Alembic upgrade head on the configured database (creating the SQLite folder first),
    quietly: before `serve` and `seed` the steps are detail (`migrate` lists them)."""
    import logging

    from reference_app.core import migrations
    from reference_app.main import _ensure_sqlite_dir

    _ensure_sqlite_dir(settings.database_url)
    steps = logging.getLogger("alembic.runtime.migration")
    level = steps.level
    steps.setLevel(max(level, logging.WARNING))
    try:
        migrations.upgrade()
    finally:
        steps.setLevel(level)


def _on_database(settings: Settings, work: Callable[[Database], Awaitable[T]]) -> T:
    """Run `work` on an engine for the configured database, disposed afterwards."""
    import asyncio

    async def run() -> T:
        database = Database.from_url(settings.database_url)
        try:
            return await work(database)
        finally:
            await database.dispose()

    return asyncio.run(run())


def _serve(args: argparse.Namespace) -> int:
    import shutil

    # Before anything imports the app's metrics: they open their files in this directory.
    made = _prepare_multiprocess_metrics(args.workers)
    try:
        return _run_server(args)
    finally:
        if made is not None:
            shutil.rmtree(made, ignore_errors=True)


# The embedded default processes an order this many seconds after it is placed, unless
# KIT_ORDER_PROCESSING_DELAY_S says otherwise: long enough to see it `pending`, short enough
# that a newcomer sees it `processed` without waiting the production default (300 s).
EMBEDDED_ORDER_DELAY_S = 5
# Demo data seeded by the embedded `serve` (idempotent): enough to browse and order.
EMBEDDED_DEMO_USERS = 5
EMBEDDED_DEMO_ITEMS = 200


def _embedded_settings(settings: Settings) -> Settings:
    """The embedded default's own defaults, applied through the environment so that every
    uvicorn worker reads them: orders processed promptly unless the delay is set."""
    import os

    if "order_processing_delay_s" in settings.model_fields_set:
        return settings
    os.environ["KIT_ORDER_PROCESSING_DELAY_S"] = str(EMBEDDED_ORDER_DELAY_S)
    get_settings.cache_clear()
    return get_settings()


def _seed_demo(settings: Settings) -> None:
    from reference_app.seed import seed

    async def run(database: Database) -> dict[str, int]:
        return await seed(
            database.sessionmaker,
            users=EMBEDDED_DEMO_USERS,
            items=EMBEDDED_DEMO_ITEMS,
            progress=False,
        )

    _on_database(settings, run)


def _order_line_key() -> str:
    """The name an order line's item id goes by on the wire, as the API's schema says."""
    from reference_app.schemas.order import OrderLineIn

    properties = OrderLineIn.model_json_schema(mode="validation").get("properties", {})
    return "item_id" if "item_id" in properties else "id"


def startup_lines(settings: Settings, base_url: str, *, demo: bool) -> list[str]:
    """What a person starting the server needs: where it runs, on what, the docs page, and on
    the embedded default the demo logins, a three-step walk-through and when orders complete."""
    from reference_app.seed import DEMO_PASSWORD, GUIDE_USER

    mode = (
        "embedded default: SQLite + in-process fakeredis"
        if settings.is_embedded
        else "configured database and Redis"
    )
    lines = [f"Core Concepts Kit on {mode}", f"OpenAPI page: {base_url}/docs"]
    api = f"{base_url}{settings.api_v1_prefix}"
    if demo:
        email, password = GUIDE_USER
        lines += [
            f"Demo logins: {email} / {password} (user), admin@example.com / {DEMO_PASSWORD} "
            f"(admin); {EMBEDDED_DEMO_ITEMS} stocked items. Register your own: POST "
            f"{settings.api_v1_prefix}/auth/register",
            f"  1. log in:  export TOKEN=$(curl -s -d username={email} -d password={password} "
            f'{api}/auth/login | python3 -c "import json,sys; '
            f"print(json.load(sys.stdin)['access_token'])\")",
            f"  2. read:    curl -s '{api}/items?limit=3'",
            f'  3. order:   curl -s -H "Authorization: Bearer $TOKEN" -H "Content-Type: '
            f'application/json" -d \'{{"items": [{{"{_order_line_key()}": 1, "quantity": 1}}]}}\' '
            f"{api}/orders",
        ]
    delay = settings.order_processing_delay_s
    where = "by a worker thread in this process" if settings.is_embedded else "by the workers"
    lines.append(
        f"Orders are processed {delay} s after they are placed, {where} (pending, then "
        f"processed: GET {settings.api_v1_prefix}/orders/<id>); KIT_ORDER_PROCESSING_DELAY_S "
        "sets the delay"
    )
    return lines


def _log_lines_only(settings: Settings) -> bool:
    """With JSON logs (production), make this process write nothing but log lines: what
    libraries print and Python warnings go through logging too. Returns whether it does."""
    from patterns.observability.logging import route_stdout_to_log
    from reference_app.core.logging import wants_json

    if not wants_json(settings):
        return False
    route_stdout_to_log()
    return True


def _announce(settings: Settings, lines: Sequence[str]) -> None:
    """Start-up lines: plain text for a person; with JSON logs (production), one JSON log line
    each, so that everything the server writes parses as JSON."""
    from reference_app.core.logging import wants_json

    if not wants_json(settings):
        print("\n".join(lines), flush=True)
        return
    import structlog

    log = structlog.stdlib.get_logger("reference_app.serve")
    for line in lines:
        log.info(line)


def _run_server(args: argparse.Namespace) -> int:
    import uvicorn

    from reference_app.core.logging import setup_logging

    settings = get_settings()
    setup_logging(settings)
    _log_lines_only(settings)
    if settings.is_embedded:
        settings = _embedded_settings(settings)
    if settings.is_embedded or args.migrate:
        _upgrade(settings)
    demo = settings.is_embedded and args.demo and settings.env != "prod"
    if demo:
        _seed_demo(settings)
    wildcard = {"0.0.0.0", "::"}  # noqa: S104 (only to print a clickable URL)
    shown_host = "127.0.0.1" if args.host in wildcard else args.host
    _announce(settings, startup_lines(settings, f"http://{shown_host}:{args.port}", demo=demo))
    uvicorn.run(
        "reference_app.main:create_app",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        reload=args.reload,
        access_log=False,  # the kit's middleware writes one structured access line per request
        log_config=None,  # keep the kit's structlog set-up instead of uvicorn's dictConfig
        log_level=settings.log_level.lower(),
    )
    return 0


def _prepare_multiprocess_metrics(workers: int) -> str | None:
    """Several workers share metrics through files (prometheus-client's multiprocess mode): give
    them a directory, emptied at start as prometheus-client asks, before any worker imports it.
    Returns the directory when it made a temporary one (removed when the server stops)."""
    import os
    import tempfile
    from pathlib import Path

    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    made = None
    if workers <= 1 and not directory:
        return None
    if not directory:
        directory = made = tempfile.mkdtemp(prefix="kit-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = directory
    path = Path(directory)
    path.mkdir(parents=True, exist_ok=True)
    for stale in path.glob("*.db"):
        stale.unlink()
    return made


def _ensure_metrics_dir() -> None:
    """A `PROMETHEUS_MULTIPROC_DIR` that does not exist yet is created: prometheus-client would
    fail on the first metric with FileNotFoundError, in any command that imports the app."""
    import os
    from pathlib import Path

    if directory := os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        Path(directory).mkdir(parents=True, exist_ok=True)


def _create_admin(args: argparse.Namespace) -> int:
    import getpass
    import os

    from patterns.db import session_scope
    from patterns.security import PasswordHasher
    from reference_app.services.users import ensure_admin

    settings = get_settings()
    email = args.email or settings.first_admin_email
    password = os.environ.get("KIT_ADMIN_PASSWORD") or (
        settings.first_admin_password.get_secret_value() if settings.first_admin_password else None
    )
    if not email:
        print("create-admin: give --email (or set KIT_FIRST_ADMIN_EMAIL)", file=sys.stderr)
        return 2
    if not password:
        password = getpass.getpass(f"Password for {email}: ")
    if len(password) < 8:
        print("create-admin: the password needs at least 8 characters", file=sys.stderr)
        return 2

    async def run(database: Database) -> bool:
        async with session_scope(database.sessionmaker) as session:
            return await ensure_admin(session, PasswordHasher(), email, password)

    created = _on_database(settings, run)
    print(f"admin {email} {'created' if created else 'already exists (left unchanged)'}")
    return 0


def _seed(args: argparse.Namespace) -> int:
    from reference_app.seed import seed

    settings = get_settings()
    if settings.env == "prod" and not args.force:
        # The demo accounts have published passwords, and one of them is an admin.
        print(
            "seed: refusing to seed demo accounts with KIT_ENV=prod: admin@example.com and the "
            "other demo users have published passwords. Pass --force to seed anyway.",
            file=sys.stderr,
        )
        return 2
    _upgrade(settings)  # seeding an unmigrated database would fail on missing tables

    async def run(database: Database) -> dict[str, int]:
        return await seed(database.sessionmaker, users=args.users, items=args.items)

    added = _on_database(settings, run)
    print(f"seed: {added['users']} users and {added['items']} items added (existing rows kept)")
    return 0


def _warm_cache(args: argparse.Namespace) -> int:
    from reference_app.core.cache import make_cache
    from reference_app.core.redis import make_redis
    from reference_app.core.warmup import warm

    settings = get_settings()
    if settings.redis_url is None:
        print("warm-cache: KIT_REDIS_URL is not set (the embedded cache lives in the server)")
        return 2

    async def run(database: Database) -> tuple[int, int]:
        redis = make_redis(settings)
        try:
            report = await warm(database, make_cache(redis), profiles=args.profiles)
            return report.warmed, report.failed
        finally:
            await redis.aclose()

    warmed, failed = _on_database(settings, run)
    print(f"warm-cache: {warmed} entries stored, {failed} failed")
    return 0 if failed == 0 else 1


def _no_broker(settings: Settings, command: str, why: str = "") -> bool:
    """True, after saying so, when no broker is configured: the embedded default's is in memory,
    inside `serve`, where no other process can reach it."""
    from reference_app.core.celery_app import uses_memory_broker

    if not uses_memory_broker(settings):
        return False
    print(
        f"{command}: no broker configured (KIT_REDIS_URL or KIT_CELERY_BROKER_URL){why}",
        file=sys.stderr,
    )
    return True


def _worker(args: argparse.Namespace) -> int:
    from reference_app.core.celery_app import get_celery_app, worker_logging
    from reference_app.worker.supervisor import run_celery, supervise

    settings = get_settings()
    why = ". The embedded default runs tasks inside `serve`; a separate worker needs Redis."
    if _no_broker(settings, "worker", why):
        return 2
    extra = args.celery_args[1:] if args.celery_args[:1] == ["--"] else args.celery_args
    from reference_app.core.logging import setup_logging

    setup_logging(settings)
    # With JSON logs, no banner (`celery --quiet`) and nothing printed outside the log.
    options = ["--quiet"] if _log_lines_only(settings) else []
    if args.restart:
        # The worker runs as a child, started again when it dies (see worker/supervisor.py).
        child = [sys.executable, "-m", "reference_app", "worker", "--no-restart"]
        child += [f"--pool={args.pool}"]
        child += [f"--concurrency={args.concurrency}"] if args.concurrency else []
        child += [f"--loglevel={args.loglevel}"] if args.loglevel else []
        child += ["--beat"] if args.beat else []
        child += [] if args.relay else ["--no-relay"]
        return supervise([*child, "--", *extra] if extra else child)
    app = get_celery_app()
    if args.relay:
        from reference_app.worker.outbox import OutboxRelayStep

        app.steps["worker"].add(OutboxRelayStep)
    argv = ["worker", f"--loglevel={args.loglevel or settings.log_level}", f"--pool={args.pool}"]
    concurrency = args.concurrency or app.conf.worker_concurrency
    argv.append(f"--concurrency={concurrency}")
    if args.beat:
        argv.append("--beat")
    with worker_logging(app):
        return run_celery(app, [*options, *argv, *extra])


def _beat(args: argparse.Namespace) -> int:
    from reference_app.core.celery_app import get_celery_app, worker_logging
    from reference_app.worker.supervisor import run_celery

    settings = get_settings()
    if _no_broker(settings, "beat"):
        return 2
    app = get_celery_app()
    argv = ["beat", f"--loglevel={args.loglevel or settings.log_level}"]
    if args.schedule:
        argv.append(f"--schedule={args.schedule}")
    with worker_logging(app):
        return run_celery(app, argv)


def _relay(args: argparse.Namespace) -> int:
    import signal

    from reference_app.core.celery_app import create_celery_app
    from reference_app.core.logging import setup_logging
    from reference_app.worker.outbox import OutboxRelay

    settings = get_settings()
    if _no_broker(settings, "relay", "; the embedded default relays inside `serve`"):
        return 2
    setup_logging(settings)
    app = create_celery_app(settings)
    relay = OutboxRelay(app)

    def stop(_signum: int, _frame: object) -> None:
        relay.stop_soon()

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, stop)
    try:
        relay.run()
    finally:
        app.close()
    return 0


def _requeue_pending(args: argparse.Namespace) -> int:
    from kombu.exceptions import OperationalError as BrokerError

    from reference_app.core.celery_app import create_celery_app
    from reference_app.worker.requeue import requeue_pending_orders

    settings = get_settings()
    why = "; the embedded default's queue lives inside `serve`"
    if _no_broker(settings, "requeue-pending", why):
        return 2
    app = create_celery_app(settings)
    try:
        ids = requeue_pending_orders(app, older_than_s=args.older_than, limit=args.limit)
    except BrokerError as exc:
        print(
            f"requeue-pending: the broker is unreachable ({exc}); nothing lost, run again later",
            file=sys.stderr,
        )
        return 1
    finally:
        app.close()
    print(f"requeue-pending: re-sent process_order for {len(ids)} pending orders")
    return 0


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "worker": _worker,
    "beat": _beat,
    "relay": _relay,
    "requeue-pending": _requeue_pending,
    "warm-cache": _warm_cache,
    "seed": _seed,
    "serve": _serve,
    "migrate": _migrate,
    "create-admin": _create_admin,
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m reference_app", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the API with uvicorn")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--workers", type=int, default=1)
    serve.add_argument("--reload", action="store_true")
    serve.add_argument(
        "--migrate", action="store_true", help="apply migrations first (always on when embedded)"
    )
    serve.add_argument(
        "--no-demo",
        dest="demo",
        action="store_false",
        help="embedded default only: do not add the demo users and items at start",
    )
    migrate = sub.add_parser("migrate", help="apply Alembic migrations (upgrade head)")
    migrate.add_argument("revision", nargs="?", default="head")
    seed = sub.add_parser(
        "seed", help="demo users and stocked items; running it twice adds nothing"
    )
    seed.add_argument("--users", type=int, default=50)
    seed.add_argument("--items", type=int, default=5000)
    seed.add_argument(
        "--force", action="store_true", help="seed even with KIT_ENV=prod (demo passwords!)"
    )
    warm = sub.add_parser("warm-cache", help="store the featured items and recent profiles")
    warm.add_argument("--profiles", type=int, default=100, help="most recent users to warm")
    admin = sub.add_parser(
        "create-admin",
        help="create an admin (password from KIT_ADMIN_PASSWORD or a prompt); idempotent",
    )
    admin.add_argument("--email", help="default: KIT_FIRST_ADMIN_EMAIL")
    worker = sub.add_parser("worker", help="run a Celery worker for the configured broker (Redis)")
    worker.add_argument(
        "--concurrency",
        type=int,
        help="processes (default: KIT_WORKER_CONCURRENCY, else one per CPU)",
    )
    worker.add_argument("--pool", default="prefork", choices=["prefork", "threads", "solo"])
    worker.add_argument("--loglevel", help="default: KIT_LOG_LEVEL")
    worker.add_argument(
        "--beat",
        action="store_true",
        help="also run the beat schedule (the pending-order sweep); in one worker only",
    )
    worker.add_argument(
        "--no-relay",
        dest="relay",
        action="store_false",
        help="do not relay the outbox here (when `relay` runs as its own process)",
    )
    worker.add_argument(
        "--no-restart",
        dest="restart",
        action="store_false",
        help="run Celery in this process and exit when it does (under systemd/Kubernetes)",
    )
    worker.add_argument(
        "celery_args", nargs=argparse.REMAINDER, help="passed on to `celery worker` after --"
    )
    beat = sub.add_parser("beat", help="run Celery beat: the periodic pending-order sweep")
    beat.add_argument("--loglevel", help="default: KIT_LOG_LEVEL")
    beat.add_argument("--schedule", help="beat's state file (default: celerybeat-schedule)")
    sub.add_parser(
        "relay", help="publish the outbox's tasks to the broker (the worker does it by default)"
    )
    requeue = sub.add_parser(
        "requeue-pending", help="re-send process_order for orders left pending (idempotent)"
    )
    requeue.add_argument(
        "--older-than",
        type=float,
        metavar="SECONDS",
        help="only orders created this long ago (default: the order countdown + 120 s)",
    )
    requeue.add_argument("--limit", type=int, default=1000, help="at most this many orders")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    _ensure_metrics_dir()
    return COMMANDS[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
