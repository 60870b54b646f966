"""The app factory: settings in, a wired FastAPI app out."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from redis.asyncio import Redis
from sqlalchemy.engine import make_url

from patterns.db import Database, is_sqlite
from patterns.errors import install_error_handlers
from patterns.observability.request_id import RequestIdMiddleware
from reference_app.api import health
from reference_app.api.v1.api import api_router
from reference_app.core.config import Settings, get_settings
from reference_app.core.redis import make_redis


def _ensure_sqlite_dir(url: str) -> None:
    if is_sqlite(url):
        database = make_url(url).database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)


def create_app(
    settings: Settings | None = None,
    *,
    database: Database | None = None,
    redis: Redis | None = None,
) -> FastAPI:
    """Build the app. `database`/`redis` given here are used as they are and never closed by
    the app (the test harness owns them); otherwise the lifespan creates and closes its own."""
    settings = settings or get_settings()

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
            owned_redis = app.state.redis = make_redis(settings)
        try:
            yield
        finally:
            if owned_redis is not None:
                await owned_redis.aclose()
            if owned_db is not None:
                await owned_db.dispose()

    app = FastAPI(
        title=settings.project_name,
        version="0.1.0",
        lifespan=lifespan,
        openapi_url=f"{settings.api_v1_prefix}/openapi.json",
        docs_url="/docs",
    )
    app.state.settings = settings
    if database is not None:
        app.state.database = database
    if redis is not None:
        app.state.redis = redis
    install_error_handlers(app)
    app.add_middleware(RequestIdMiddleware)
    app.include_router(health.router)
    app.include_router(api_router, prefix=settings.api_v1_prefix)
    return app
