"""Cache warming (guide: "Cache Warming"): the featured items and recent users' profiles, at
start-up and by `python -m reference_app warm-cache`."""

from __future__ import annotations

import logging
from functools import partial

from patterns.cache import Cache, WarmEntry, WarmReport
from patterns.db import Database
from reference_app.core.cache import FEATURED, FEATURED_LIMIT, FEATURED_TAG, PROFILE, user_tag
from reference_app.core.state import AppState
from reference_app.crud.user import users
from reference_app.schemas.item import ItemResponse
from reference_app.schemas.profile import ProfileResponse
from reference_app.schemas.user import UserResponse
from reference_app.services.items import load_featured
from reference_app.services.users import load_profiles

logger = logging.getLogger("reference_app.cache")


async def warm(database: Database, cache: Cache, *, profiles: int = 0) -> WarmReport:
    """Store the featured items and the profiles of the `profiles` most recent active users."""
    async with database.sessionmaker() as session:
        entries = [
            WarmEntry(
                FEATURED,
                partial(load_featured, session),
                parts={"limit": FEATURED_LIMIT},
                tags=[FEATURED_TAG],
                model=list[ItemResponse],
            )
        ]
        if profiles:
            recent = await users.recently_joined_active(session, profiles)
            people = [UserResponse.model_validate(user) for user in recent]
            built = await load_profiles(session, people)
            entries += [
                WarmEntry(
                    PROFILE,
                    partial(_ready, built[user.id]),
                    principal=user.id,
                    tags=[user_tag(user.id)],
                    model=ProfileResponse,
                )
                for user in people
            ]
        return await cache.warm(entries)


async def _ready(profile: ProfileResponse) -> ProfileResponse:
    """A profile built beforehand with the others (`load_profiles`: two queries for all)."""
    return profile


async def warm_cache(state: AppState) -> None:
    """Start-up warming: never fatal (an empty or unmigrated database just warms nothing)."""
    try:
        report = await warm(state.database, state.redis.cache)
    except Exception as exc:
        logger.warning("cache warm-up skipped: %s", type(exc).__name__)
        return
    logger.info("cache warmed", extra={"warmed": report.warmed, "failed": report.failed})
