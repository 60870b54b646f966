"""The current user, and accounts created by admins (guide: "API Endpoints").

Each route that changes something calls its flow in `reference_app/services/users.py`.
"""

from __future__ import annotations

from functools import partial

from fastapi import APIRouter, Response, status

from patterns.errors import error_responses
from patterns.responses import json_body
from reference_app.core.cache import PROFILE, user_tag
from reference_app.core.db import SessionDep
from reference_app.core.deps import AdminUser, CacheDep, CurrentUser, CurrentUserRecord, StateDep
from reference_app.models.profile import UserPreferences
from reference_app.models.user import User
from reference_app.schemas.profile import PreferencesResponse, PreferencesUpdate, ProfileResponse
from reference_app.schemas.user import Principal, UserCreate, UserResponse, UserUpdateMe
from reference_app.services import auth, users

router = APIRouter(prefix="/users", tags=["users"])


@router.get("/me", response_model=UserResponse, responses=error_responses(401))
async def read_me(user: CurrentUser) -> Principal:
    """The authenticated user."""
    return user


@router.get("/profile", response_model=ProfileResponse, responses=error_responses(401))
async def read_profile(user: CurrentUser, session: SessionDep, cache: CacheDep) -> Response:
    """Your profile: you, your 5 most recent activities and your preferences. Cached per user
    (the user id is part of the key) and dropped whenever your data changes."""
    body = await cache.get_or_set_json(
        PROFILE,
        partial(users.load_profile, session, user),
        principal=user.id,
        tags=[user_tag(user.id)],
        model=ProfileResponse,
    )
    # The cached JSON as it is: FastAPI would validate and serialise it again.
    return json_body(body)


@router.patch(
    "/me/preferences", response_model=PreferencesResponse, responses=error_responses(401, 422)
)
async def update_preferences(
    changes: PreferencesUpdate, user: CurrentUser, session: SessionDep, state: StateDep
) -> UserPreferences:
    """Change your preferences (only the fields you send)."""
    return await users.update_preferences(session, state, user, changes)


@router.patch("/me", response_model=UserResponse, responses=error_responses(401, 422))
async def update_me(
    changes: UserUpdateMe, user: CurrentUserRecord, session: SessionDep, state: StateDep
) -> User:
    """Change your name or password (a new password needs the current one). A new password
    ends every session: all tokens issued before it, this request's too, are refused from the
    commit on (401 `credentials_changed`), and the client logs in again with the new one."""
    return await users.update_me(session, state, user, changes)


@router.post(
    "/",
    response_model=UserResponse,
    status_code=status.HTTP_201_CREATED,
    responses=error_responses(401, 403, 409, 422),
)
async def create_user(
    user_in: UserCreate, admin: AdminUser, session: SessionDep, state: StateDep
) -> User:
    """Create an account with any role (admins only)."""
    return await auth.create_account(session, state.passwords, user_in)
