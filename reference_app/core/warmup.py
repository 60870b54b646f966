"""Cache warming (guide: "Cache Warming"): the featured items and recent users' profiles, at
start-up and by `python -m reference_app warm-cache`."""

from __future__ import annotations

import logging
from contextlib import suppress
from functools import partial

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession

from patterns.cache import Cache, WarmEntry, WarmReport
from patterns.db import Database
from reference_app.core.cache import FEATURED, FEATURED_LIMIT, FEATURED_TAG, PROFILE, user_tag
from reference_app.core.state import AppState
from reference_app.crud.user import users
from reference_app.schemas.item import ItemResponse
from reference_app.schemas.profile import ProfileResponse
from reference_app.schemas.user import UserResponse
from reference_app.services.items import load_featured
from reference_app.services.users import load_profile, load_profiles

logger = logging.getLogger("reference_app.cache")


# Profiles are read together in batches of this many users: two queries per batch, not two per
# user, and each batch stored right after it was read (a change committed meanwhile is what the
# stored profile must not miss).
PROFILE_BATCH = 100


async def warm(database: Database, cache: Cache, *, profiles: int = 0) -> WarmReport:
    """Store the featured items and the profiles of the `profiles` most recent active users."""
    async with database.sessionmaker() as session:
        featured = WarmEntry(
            FEATURED,
            partial(load_featured, session),
            parts={"limit": FEATURED_LIMIT},
            tags=[FEATURED_TAG],
            model=list[ItemResponse],
        )
        reports = [await cache.warm([featured])]
        if profiles:
            recent = await users.recently_joined_active(session, profiles)
            people = [UserResponse.model_validate(user) for user in recent]
            for start in range(0, len(people), PROFILE_BATCH):
                batch = await _profile_entries(session, people[start : start + PROFILE_BATCH])
                reports.append(await cache.warm(batch))
        return WarmReport(
            warmed=sum(r.warmed for r in reports), failed=sum(r.failed for r in reports)
        )


async def _profile_entries(session: AsyncSession, people: list[UserResponse]) -> list[WarmEntry]:
    """The batch's profiles, read together; if that fails, each is read on its own when it is
    warmed, so every failure is counted by `Cache.warm` and the others are still stored."""
    try:
        built = await load_profiles(session, people)
    except Exception as exc:  # warming is never fatal
        logger.warning("profiles not read together (%s): one by one", type(exc).__name__)
        with suppress(SQLAlchemyError):
            await session.rollback()
        built = {}
    return [
        WarmEntry(
            PROFILE,
            partial(_ready, built[user.id])
            if user.id in built
            else partial(load_profile, session, user),
            principal=user.id,
            tags=[user_tag(user.id)],
            model=ProfileResponse,
        )
        for user in people
    ]


async def _ready(profile: ProfileResponse) -> ProfileResponse:
    """A profile read beforehand with the rest of its batch (`load_profiles`)."""
    return profile


async def warm_cache(state: AppState) -> None:
    """Start-up warming: never fatal (an empty or unmigrated database just warms nothing)."""
    try:
        report = await warm(state.database, state.redis.cache)
    except Exception as exc:
        logger.warning("cache warm-up skipped: %s", type(exc).__name__)
        return
    logger.info("cache warmed", extra={"warmed": report.warmed, "failed": report.failed})
