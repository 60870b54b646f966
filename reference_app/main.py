"""The app factory: settings in, a wired FastAPI app out."""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import AsyncIterator
from contextlib import ExitStack, asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi_offline import FastAPIOffline
from redis.asyncio import Redis
from sqlalchemy.engine import make_url

from patterns.db import Database, is_sqlite, session_scope
from patterns.errors import install_error_handlers, is_unavailable
from patterns.observability.metrics import mark_process_dead_if_multiprocess
from patterns.observability.middleware import install_observability
from patterns.observability.request_id import RequestIdMiddleware
from patterns.security import PasswordHasher
from patterns.security.principals import PrincipalCache
from patterns.security.revocation import RevocationList
from patterns.validation import BodySizeLimitMiddleware
from reference_app.api import health
from reference_app.api.v1.api import api_router
from reference_app.core.cache import make_cache
from reference_app.core.celery_app import create_celery_app
from reference_app.core.config import Settings, get_settings
from reference_app.core.errors import install_app_error_handlers
from reference_app.core.logging import setup_logging
from reference_app.core.mail import LoggingMailBackend
from reference_app.core.metrics import HTTP_METRICS
from reference_app.core.principals import Principals
from reference_app.core.redis import make_redis
from reference_app.core.security import make_token_service
from reference_app.core.warmup import warm_cache
from reference_app.crud import user as user_crud
from reference_app.schemas.user import Principal
from reference_app.worker.embedded import embedded_worker

logger = logging.getLogger("reference_app")


def _ensure_sqlite_dir(url: str) -> None:
    if is_sqlite(url):
        database = make_url(url).database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)


async def _ensure_first_admin(app: FastAPI, settings: Settings) -> None:
    """`KIT_FIRST_ADMIN_EMAIL`/`_PASSWORD`: an admin created idempotently at start-up."""
    if not (settings.first_admin_email and settings.first_admin_password):
        return
    async with session_scope(app.state.database.sessionmaker) as session:
        created = await user_crud.ensure_admin(
            session,
            settings.first_admin_email,
            settings.first_admin_password.get_secret_value(),
            app.state.passwords,
        )
    if created:
        logger.info("first admin created", extra={"email": settings.first_admin_email})


FIRST_ADMIN_RETRY_MAX_S = 30.0


async def _start_first_admin(app: FastAPI, settings: Settings) -> asyncio.Task[None] | None:
    """Ensure the first admin now; if the database is unreachable, keep trying in the background.

    A server that starts before its database (a restart, compose without health checks) comes
    up and answers 503 until the database does, as it would without a first admin; it does not
    exit. Any other failure (an unmigrated database, say) still stops the start-up.
    """
    try:
        await _ensure_first_admin(app, settings)
        return None
    except Exception as exc:
        if not is_unavailable(exc):
            raise
        logger.warning("first admin not ensured yet: database unavailable (%s)", type(exc).__name__)
    return asyncio.create_task(_retry_first_admin(app, settings))


async def _retry_first_admin(app: FastAPI, settings: Settings) -> None:
    delay = 1.0
    while True:
        await asyncio.sleep(delay)
        try:
            await _ensure_first_admin(app, settings)
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

    A full (generation 2) collection walks every tracked object; with the app loaded that took
    about 100 ms, a pause of the event loop, hence of every request in flight on the worker,
    every few thousand requests (docs/performance.md). Frozen objects are still freed by
    reference counting; only cycles among them are left alone, and they live for the process
    anyway. Done only when the app owns its database and Redis (serving), not in tests.
    """
    gc.collect()
    gc.freeze()


def _use_redis(app: FastAPI, redis: Redis, settings: Settings) -> None:
    """Everything that lives in Redis: the client, the response cache, user snapshots."""
    app.state.redis = redis
    app.state.cache = make_cache(redis)
    revocations = RevocationList(redis, fail_open=settings.auth_revocation_fail_open)
    app.state.revocations = revocations
    principals: Principals = PrincipalCache(
        redis, revocations, Principal, ttl=settings.auth_principal_ttl_s
    )
    app.state.principals = principals


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

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        owned_db = owned_redis = None
        if database is None:
            _ensure_sqlite_dir(settings.database_url)
            owned_db = app.state.database = Database.from_url(
                settings.database_url,
                pool_size=settings.db_pool_size,
                max_overflow=settings.db_max_overflow,
                echo=settings.db_echo,
            )
        if redis is None:
            owned_redis = make_redis(settings)
            _use_redis(app, owned_redis, settings)
        first_admin = app.state.first_admin_retry = await _start_first_admin(app, settings)
        if settings.cache_warm_on_startup:
            await warm_cache(app)
        if database is None and redis is None:
            _freeze_startup_objects()
        background = ExitStack()
        try:
            # No broker configured: tasks run on a worker thread here (reference_app.worker).
            app.state.embedded_worker = background.enter_context(embedded_worker(app.state.celery))
            yield
        finally:
            if first_admin is not None:
                first_admin.cancel()
            background.close()
            app.state.celery.close()
            app.state.cache.close()
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
    )
    app.state.settings = settings
    app.state.tokens = make_token_service(settings)
    app.state.passwords = PasswordHasher()
    app.state.mailer = LoggingMailBackend()
    # Publishes this app's tasks (`enqueue_process_order(..., app=request.app.state.celery)`)
    # to the broker its settings name; building it opens no connection.
    app.state.celery = create_celery_app(settings)
    if database is not None:
        app.state.database = database
    if redis is not None:
        _use_redis(app, redis, settings)
    install_error_handlers(app)
    install_app_error_handlers(app)
    # After the error handlers (their types are recorded), before the request-id middleware
    # (added last, so outermost: the id is bound for every line this one logs).
    install_observability(app, metrics=HTTP_METRICS)
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.add_middleware(RequestIdMiddleware)
    app.include_router(health.router)
    app.include_router(api_router, prefix=settings.api_v1_prefix)
    return app
