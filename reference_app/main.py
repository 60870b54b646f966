"""The app factory: settings in, a wired FastAPI app out."""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import AsyncIterator
from contextlib import ExitStack, asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.telemetry import TelemetryConfig
from fastapi_offline import FastAPIOffline
from redis.asyncio import Redis
from sqlalchemy.engine import make_url
from starlette.types import Scope

from patterns.cache import Cache
from patterns.cache.edge import MemoryHitMiddleware, PrincipalHitMiddleware
from patterns.db import Database, is_sqlite, session_scope
from patterns.errors import install_error_handlers, is_unavailable
from patterns.observability.metrics import mark_process_dead_if_multiprocess
from patterns.observability.middleware import install_observability
from patterns.observability.request_id import RequestIdMiddleware
from patterns.security import PasswordHasher
from patterns.security.principals import PrincipalCache
from patterns.validation import BodySizeLimitMiddleware, SingleValuedQueryMiddleware
from reference_app.api import health
from reference_app.api.v1.api import api_router
from reference_app.core.cache import edge_entries, principal_edge_entries
from reference_app.core.celery_app import create_celery_app
from reference_app.core.config import Settings, get_settings
from reference_app.core.deps import admits, subject_of
from reference_app.core.errors import install_app_error_handlers
from reference_app.core.logging import setup_logging
from reference_app.core.mail import LoggingMailBackend
from reference_app.core.metrics import HTTP_METRICS, POOL_METRICS
from reference_app.core.openapi import install_links
from reference_app.core.redis import make_redis
from reference_app.core.security import make_token_service
from reference_app.core.state import AppState, RedisParts
from reference_app.core.warmup import warm_cache
from reference_app.schemas.user import Principal
from reference_app.services.users import ensure_admin
from reference_app.worker.embedded import memory_broker_relay, memory_broker_worker

logger = logging.getLogger("reference_app")


def _ensure_sqlite_dir(url: str) -> None:
    if is_sqlite(url):
        database = make_url(url).database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)


async def _ensure_first_admin(state: AppState) -> None:
    """`KIT_FIRST_ADMIN_EMAIL`/`_PASSWORD`: an admin created idempotently at start-up."""
    settings = state.settings
    if not (settings.first_admin_email and settings.first_admin_password):
        return
    async with session_scope(state.database.sessionmaker) as session:
        created = await ensure_admin(
            session,
            state.passwords,
            settings.first_admin_email,
            settings.first_admin_password.get_secret_value(),
        )
    if created:
        logger.info("first admin created", extra={"email": settings.first_admin_email})


FIRST_ADMIN_RETRY_MAX_S = 30.0


async def _start_first_admin(state: AppState) -> asyncio.Task[None] | None:
    """Ensure the first admin now; if the database is unreachable, keep trying in the background.

    A server that starts before its database (a restart, compose without health checks) comes
    up and answers 503 until the database does, as it would without a first admin; it does not
    exit. Any other failure (an unmigrated database, say) still stops the start-up.
    """
    try:
        await _ensure_first_admin(state)
        return None
    except Exception as exc:
        if not is_unavailable(exc):
            raise
        logger.warning("first admin not ensured yet: database unavailable (%s)", type(exc).__name__)
    return asyncio.create_task(_retry_first_admin(state))


async def _retry_first_admin(state: AppState) -> None:
    delay = 1.0
    while True:
        await asyncio.sleep(delay)
        try:
            await _ensure_first_admin(state)
        except Exception as exc:
            if not is_unavailable(exc):
                logger.exception("first admin not created")
                return
            delay = min(delay * 2, FIRST_ADMIN_RETRY_MAX_S)
            logger.warning(
                "first admin not ensured yet: database unavailable (%s); next try in %.0f s",
                type(exc).__name__,
                delay,
            )
        else:
            logger.info("first admin ensured after the database came back")
            return


def _freeze_startup_objects() -> None:
    """Move what start-up built (modules, routes, mappers, pools) out of the collector's sight.

    A full (generation 2) collection walks every tracked object; with the app loaded that takes
    about 100 ms, a pause of the event loop, hence of every request in flight on the worker,
    every few thousand requests (docs/performance.md). Frozen objects are still freed by
    reference counting; only cycles among them are left alone, and they live for the process
    anyway. Done only when the app owns its database and Redis (serving), not in tests.
    """
    gc.collect()
    gc.freeze()


def _build_state(settings: Settings, database: Database | None, redis: Redis | None) -> AppState:
    """The app's shared objects; the database and Redis parts only when given (else the
    lifespan makes them)."""
    state = AppState(
        settings=settings,
        tokens=make_token_service(settings),
        passwords=PasswordHasher(),
        mailer=LoggingMailBackend(),
        # Publishes this app's tasks to the broker its settings name; opens no connection.
        celery=create_celery_app(settings),
    )
    if database is not None:
        state.database = database
    if redis is not None:
        state.redis = RedisParts.build(redis, settings)
    return state


def _cache_of(scope: Scope) -> Cache | None:
    """The app's cache once start-up has made its Redis parts, else None."""
    parts: RedisParts | None = getattr(scope["app"].state.kit, "redis", None)
    return parts.cache if parts is not None else None


def _principals_of(scope: Scope) -> PrincipalCache[Principal] | None:
    """The app's user snapshots once start-up has made its Redis parts, else None."""
    parts: RedisParts | None = getattr(scope["app"].state.kit, "redis", None)
    return parts.principals if parts is not None else None


NO_OTEL: TelemetryConfig = {"tracing": False, "metrics": False, "logs": False}


def create_app(
    settings: Settings | None = None,
    *,
    database: Database | None = None,
    redis: Redis | None = None,
) -> FastAPI:
    """Build the app. `database`/`redis` given here are used as they are and never closed by
    the app (the test harness owns them); otherwise the lifespan creates and closes its own."""
    settings = settings or get_settings()
    setup_logging(settings)

    state = _build_state(settings, database, redis)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        owned_db = owned_redis = None
        if database is None:
            _ensure_sqlite_dir(settings.database_url)
            owned_db = state.database = Database.from_url(
                settings.database_url,
                pool_size=settings.db_pool_size,
                max_overflow=settings.db_max_overflow,
                echo=settings.db_echo,
            )
            POOL_METRICS.track(owned_db.engine)
        if redis is None:
            owned_redis = make_redis(settings)
            state.redis = RedisParts.build(owned_redis, settings)
        first_admin = state.first_admin_retry = await _start_first_admin(state)
        if settings.cache_warm_on_startup:
            await warm_cache(state)
        if database is None and redis is None:
            _freeze_startup_objects()
        background = ExitStack()
        try:
            # No broker configured: tasks run on a worker thread here (reference_app.worker).
            state.embedded_worker = background.enter_context(memory_broker_worker(state.celery))
            state.outbox_relay = background.enter_context(memory_broker_relay(state.celery))
            yield
        finally:
            if first_admin is not None:
                first_admin.cancel()
            background.close()
            state.celery.close()
            state.redis.cache.close()
            if owned_redis is not None:
                await owned_redis.aclose()
            if owned_db is not None:
                await owned_db.dispose()
            mark_process_dead_if_multiprocess()

    # FastAPI's docs pages load Swagger UI and ReDoc from a CDN: FastAPIOffline serves them
    # from the copy packaged with fastapi-offline, so /docs works without internet.
    app = FastAPIOffline(
        title=settings.project_name,
        version="0.1.0",
        lifespan=lifespan,
        openapi_url=f"{settings.api_v1_prefix}/openapi.json",
        docs_url="/docs",
        telemetry=None if settings.otel else NO_OTEL,
    )
    app.state.kit = state
    install_error_handlers(app)
    install_app_error_handlers(app)
    # Inside the observability middleware, so a hit is timed, counted and logged too.
    app.add_middleware(
        MemoryHitMiddleware,
        cache_of=_cache_of,
        entries=edge_entries(settings.api_v1_prefix),
    )
    # The profile's hit, for a token and a user the endpoint's dependencies would accept.
    app.add_middleware(
        PrincipalHitMiddleware[Principal],
        tokens=state.tokens,
        principals_of=_principals_of,
        cache_of=_cache_of,
        entries=principal_edge_entries(settings.api_v1_prefix),
        subject_of=subject_of,
        admits=admits,
    )
    # After the error handlers (their types are recorded), before the request-id middleware
    # (added last, so outermost: the id is bound for every line this one logs).
    install_observability(app, metrics=HTTP_METRICS)
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.add_middleware(SingleValuedQueryMiddleware)
    app.add_middleware(health.LivenessMiddleware)
    app.add_middleware(RequestIdMiddleware)
    app.include_router(health.router)
    app.include_router(api_router, prefix=settings.api_v1_prefix)
    install_links(app, prefix=settings.api_v1_prefix)
    return app
