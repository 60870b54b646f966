"""What the app is built from, as one typed object (guide: "Dependency Injection").

The guide reaches its engine, Redis client and settings as module globals. Here `create_app`
builds one `AppState` per app and stores it as `app.state.kit`; endpoints and services get it, or
one of its parts, through the dependencies below, so a test can give an app its own database and
Redis and a reader finds every shared object listed in one place.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, FastAPI, Request
from redis.asyncio import Redis

from patterns.cache import Cache
from patterns.cache.batching import MgetBatcher
from patterns.db import Database
from patterns.security import PasswordHasher, TokenService
from patterns.security.principals import PrincipalCache
from patterns.security.revocation import RevocationList
from reference_app.core.cache import make_cache
from reference_app.core.celery_app import KitCelery
from reference_app.core.config import Settings
from reference_app.core.mail import MailBackend
from reference_app.schemas.user import Principal

if TYPE_CHECKING:
    from reference_app.worker.outbox import OutboxRelay


@dataclass
class RedisParts:
    """Everything that lives in Redis, built from one client.

    The two revocation lists are the two policies for a Redis outage, named once here rather
    than chosen per request: `checks` answers "is this token revoked?" on every authenticated
    read and follows `KIT_AUTH_REVOCATION_FAIL_OPEN` (open by default: the API stays readable);
    `writes` records revocations (logout, refresh rotation) and always fails closed (a 503), so
    a client never believes it logged out when it did not.
    """

    client: Redis
    cache: Cache
    checks: RevocationList
    writes: RevocationList
    principals: PrincipalCache[Principal]

    @classmethod
    def build(cls, redis: Redis, settings: Settings) -> RedisParts:
        checks = RevocationList(redis, fail_open=settings.auth_revocation_fail_open)
        return cls(
            client=redis,
            cache=make_cache(redis),
            checks=checks,
            writes=RevocationList(redis, fail_open=False),
            principals=PrincipalCache(
                redis,
                checks,
                Principal,
                ttl=settings.auth_principal_ttl_s,
                # Every authenticated request reads Redis first: concurrent ones share a round
                # trip (docs/performance.md).
                mget=MgetBatcher(redis).mget,
            ),
        )


@dataclass
class AppState:
    """The app's shared objects. `database` and `redis` are set by `create_app` when given,
    else by the lifespan at start-up; the rest exist from the moment the app is built."""

    settings: Settings
    tokens: TokenService
    passwords: PasswordHasher
    mailer: MailBackend
    celery: KitCelery
    database: Database = field(init=False)
    redis: RedisParts = field(init=False)
    embedded_worker: bool = False
    # The embedded default's outbox relay, in this process (woken after each order's commit);
    # with a broker configured the worker runs it instead.
    outbox_relay: OutboxRelay | None = None
    first_admin_retry: asyncio.Task[None] | None = None


def app_state(app: FastAPI) -> AppState:
    """The app's state, for code that holds the app rather than a request (start-up, tests)."""
    state: AppState = app.state.kit
    return state


async def get_state(request: Request) -> AppState:
    # async although it awaits nothing: FastAPI runs a plain `def` dependency in its thread
    # pool, a thread hop for an attribute lookup.
    state: AppState = request.app.state.kit
    return state


StateDep = Annotated[AppState, Depends(get_state)]


async def get_cache(state: StateDep) -> Cache:
    return state.redis.cache


CacheDep = Annotated[Cache, Depends(get_cache)]
