"""Changing users: your own name, password and preferences, an admin changing an account's role
or state, and reading a profile (guide: "User Management Flow", "Role-Based Access Control").

Every flow that changes a user drops, after its commit, what is cached about them: the snapshot
the current-user dependency reads (`state.redis.principals.forget`, so a deactivation, a new
role or a new password take effect on the user's next request in every worker) and their
cached profile (its tag). Each flow does it itself, in sight, rather than an ORM event noticing
the change somewhere else; `tests/integration/test_principals.py` fails when one forgets.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial

from sqlalchemy.ext.asyncio import AsyncSession

from patterns.db import on_commit
from patterns.errors import (
    AuthenticationError,
    BusinessRuleError,
    NotFoundError,
    ValidationFailedError,
)
from patterns.security import PasswordHasher
from reference_app.core.cache import user_tag
from reference_app.core.state import AppState
from reference_app.crud.activity import activities, preferences
from reference_app.crud.user import users
from reference_app.models.profile import Activity, UserPreferences
from reference_app.models.user import Role, User
from reference_app.schemas.profile import (
    ActivityResponse,
    PreferencesResponse,
    PreferencesUpdate,
    ProfileResponse,
)
from reference_app.schemas.user import (
    Principal,
    UserAdminUpdate,
    UserResponse,
    UserUpdateMe,
    normalize_email,
)

RECENT_ACTIVITY = 5


async def update_me(
    session: AsyncSession, state: AppState, user: User, changes: UserUpdateMe
) -> User:
    """Change your name or password (a new password needs the current one). A new password
    ends every session: the credentials version moves, so every token issued before it, this
    request's too, is refused from the commit on (401 `credentials_changed`)."""
    if changes.password is not None:
        if changes.current_password is None:
            raise ValidationFailedError("current_password is required to set a new password.")
        valid, _ = await state.passwords.verify_and_update_async(
            changes.current_password, user.hashed_password
        )
        if not valid:
            raise AuthenticationError("The current password is wrong.", code="invalid_credentials")
        user.hashed_password = await state.passwords.hash_async(changes.password)
        # In SQL, not Python: two concurrent changes must bump it twice, or a token issued
        # between them would carry the final version.
        user.credentials_version = User.credentials_version + 1
    if "full_name" in changes.model_fields_set:
        user.full_name = changes.full_name
    await session.flush()
    # After the commit: the next request reads the new row (and its version), and the
    # profile shows the new name.
    on_commit(session, partial(state.redis.principals.forget, [str(user.id)]))
    state.redis.cache.invalidate_on_commit(session, tags=[user_tag(user.id)])
    return user


async def admin_update(
    session: AsyncSession, state: AppState, admin: Principal, user_id: int, changes: UserAdminUpdate
) -> User:
    """Deactivate, reactivate or change the role of an account. It takes effect on the
    account's next request. Admins cannot deactivate or demote themselves, and the last active
    admin cannot be deactivated or demoted, even by two admins acting on each other at once."""
    user = await users.get(session, user_id)
    if user is None:
        raise NotFoundError(f"User {user_id} was not found.", code="user_not_found")
    removes_admin = changes.is_active is False or (
        changes.role is not None and changes.role is not Role.ADMIN
    )
    if user.id == admin.id and removes_admin:
        raise BusinessRuleError(
            "Admins cannot deactivate or demote themselves.", code="self_lockout"
        )
    removes_an_active_admin = user.role == Role.ADMIN.value and user.is_active and removes_admin
    if removes_an_active_admin and await users.lock_active_admin_ids(session) <= {user.id}:
        raise BusinessRuleError(
            "The last active admin cannot be deactivated or demoted.", code="last_admin"
        )
    if changes.is_active is not None:
        user.is_active = changes.is_active
    if changes.role is not None:
        user.role = changes.role.value
    await session.flush()
    # After the commit: the account's next request reads the new row, in every worker, and
    # its profile (which shows both) is rebuilt.
    on_commit(session, partial(state.redis.principals.forget, [str(user.id)]))
    state.redis.cache.invalidate_on_commit(session, tags=[user_tag(user.id)])
    return user


async def update_preferences(
    session: AsyncSession, state: AppState, user: Principal, changes: PreferencesUpdate
) -> UserPreferences:
    """Change your preferences (only the fields you send); the profile shows them."""
    prefs = await preferences.get_for_user(session, user.id)
    if prefs is None:
        prefs = UserPreferences(user_id=user.id)
        session.add(prefs)
    for field, value in changes.model_dump(exclude_unset=True, exclude_none=True).items():
        setattr(prefs, field, value)
    await session.flush()
    state.redis.cache.invalidate_on_commit(session, tags=[user_tag(user.id)])
    return prefs


async def load_profile(session: AsyncSession, user: UserResponse) -> ProfileResponse:
    """You, your most recent activities and your preferences: two small indexed queries."""
    recent = await activities.recent(session, user.id, RECENT_ACTIVITY)
    prefs = await preferences.get_for_user(session, user.id)
    return _profile(user, recent, prefs)


async def load_profiles(
    session: AsyncSession, people: Sequence[UserResponse]
) -> dict[int, ProfileResponse]:
    """`load_profile` for many users in two queries, not two per user (the cache warm-up)."""
    ids = [user.id for user in people]
    recent = await activities.recent_for_users(session, ids, RECENT_ACTIVITY)
    prefs = await preferences.get_for_users(session, ids)
    return {user.id: _profile(user, recent[user.id], prefs.get(user.id)) for user in people}


def _profile(
    user: UserResponse, recent: Sequence[Activity], prefs: UserPreferences | None
) -> ProfileResponse:
    return ProfileResponse(
        user=UserResponse.model_validate(user),
        recent_activity=[ActivityResponse.model_validate(a) for a in recent],
        preferences=PreferencesResponse.model_validate(prefs) if prefs else PreferencesResponse(),
    )


async def ensure_admin(
    session: AsyncSession, passwords: PasswordHasher, email: str, password: str
) -> bool:
    """Create an admin if no user has this email; True when created. Safe with several workers
    starting at once."""
    row = {
        "email": normalize_email(email),
        "hashed_password": await passwords.hash_async(password),
        "role": Role.ADMIN.value,
        "is_active": True,
    }
    return bool(await users.insert_missing(session, [row]))
