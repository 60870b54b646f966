"""The current user, and accounts created by admins (guide: "API Endpoints")."""

from __future__ import annotations

from fastapi import APIRouter, Request, status

from patterns.errors import AuthenticationError, ValidationFailedError, error_responses
from reference_app.core.deps import AdminUser, CurrentUser, SessionDep
from reference_app.core.security import get_passwords
from reference_app.crud import user as user_crud
from reference_app.models.user import User
from reference_app.schemas.user import UserCreate, UserResponse, UserUpdateMe

router = APIRouter(prefix="/users", tags=["users"])


@router.get("/me", response_model=UserResponse, responses=error_responses(401))
async def read_me(user: CurrentUser) -> User:
    """The authenticated user."""
    return user


@router.patch("/me", response_model=UserResponse, responses=error_responses(401, 422))
async def update_me(
    changes: UserUpdateMe, user: CurrentUser, session: SessionDep, request: Request
) -> User:
    """Change your name or password (a new password needs the current one)."""
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
    if "full_name" in changes.model_fields_set:
        user.full_name = changes.full_name
    await session.flush()
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
