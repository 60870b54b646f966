"""The current user, and accounts created by admins (guide: "API Endpoints")."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response, status
from sqlalchemy import select

from patterns.errors import AuthenticationError, ValidationFailedError, error_responses
from reference_app.core.cache import PROFILE, CacheDep, user_tag
from reference_app.core.deps import AdminUser, CurrentUser, CurrentUserRecord, SessionDep
from reference_app.core.security import get_passwords
from reference_app.crud import user as user_crud
from reference_app.crud.profile import load_profile
from reference_app.models.profile import UserPreferences
from reference_app.models.user import User
from reference_app.schemas.profile import PreferencesResponse, PreferencesUpdate, ProfileResponse
from reference_app.schemas.user import Principal, UserCreate, UserResponse, UserUpdateMe

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
        lambda: load_profile(session, user),
        principal=user.id,
        tags=[user_tag(user.id)],
        model=ProfileResponse,
    )
    # The cached JSON as it is: FastAPI would validate and serialise it again.
    return Response(body, media_type="application/json")


@router.patch(
    "/me/preferences", response_model=PreferencesResponse, responses=error_responses(401, 422)
)
async def update_preferences(
    changes: PreferencesUpdate, user: CurrentUser, session: SessionDep, cache: CacheDep
) -> UserPreferences:
    """Change your preferences (only the fields you send)."""
    prefs = await session.scalar(select(UserPreferences).where(UserPreferences.user_id == user.id))
    if prefs is None:
        prefs = UserPreferences(user_id=user.id)
        session.add(prefs)
    for field, value in changes.model_dump(exclude_unset=True, exclude_none=True).items():
        setattr(prefs, field, value)
    await session.flush()
    cache.invalidate_on_commit(session, tags=[user_tag(user.id)])
    return prefs


@router.patch("/me", response_model=UserResponse, responses=error_responses(401, 422))
async def update_me(
    changes: UserUpdateMe,
    user: CurrentUserRecord,
    session: SessionDep,
    request: Request,
    cache: CacheDep,
) -> User:
    """Change your name or password (a new password needs the current one). A new password
    ends every session: all tokens issued before it, this request's too, are refused from the
    commit on (401 `credentials_changed`), and the client logs in again with the new one."""
    hasher = get_passwords(request)
    if changes.password is not None:
        if changes.current_password is None:
            raise ValidationFailedError("current_password is required to set a new password.")
        valid, _ = await hasher.verify_and_update_async(
            changes.current_password, user.hashed_password
        )
        if not valid:
            raise AuthenticationError("The current password is wrong.", code="invalid_credentials")
        user.hashed_password = await hasher.hash_async(changes.password)
        # In SQL, not Python: two concurrent changes must bump it twice, or a token issued
        # between them would carry the final version.
        user.credentials_version = User.credentials_version + 1
    if "full_name" in changes.model_fields_set:
        user.full_name = changes.full_name
    await session.flush()
    cache.invalidate_on_commit(session, tags=[user_tag(user.id)])
    return user


@router.post(
    "/",
    response_model=UserResponse,
    status_code=status.HTTP_201_CREATED,
    responses=error_responses(401, 403, 409, 422),
)
async def create_user(
    user_in: UserCreate, admin: AdminUser, session: SessionDep, request: Request
) -> User:
    """Create an account with any role (admins only)."""
    return await user_crud.create(session, user_in, get_passwords(request))
