"""Admin-only views (guide: "Role-Based Access Control": the guide's `/admin/users` example)."""

from __future__ import annotations

from fastapi import APIRouter

from patterns.errors import error_responses
from patterns.pagination import Page, PageParamsDep
from patterns.validation import IdPath
from reference_app.core.db import SessionDep
from reference_app.core.deps import AdminUser, StateDep
from reference_app.crud.user import users
from reference_app.models.user import User
from reference_app.schemas.user import UserAdminUpdate, UserResponse
from reference_app.services import users as user_service

router = APIRouter(prefix="/admin", tags=["admin"])


@router.get("/users", response_model=Page[UserResponse], responses=error_responses(401, 403, 422))
async def list_users(
    admin: AdminUser, session: SessionDep, params: PageParamsDep
) -> Page[UserResponse]:
    """Every user, paginated (admins only)."""
    return await users.get_page(session, params, schema=UserResponse)


@router.patch(
    "/users/{user_id:id}",
    response_model=UserResponse,
    responses=error_responses(401, 403, 404, 409, 422),
)
async def update_user(
    user_id: IdPath,
    changes: UserAdminUpdate,
    admin: AdminUser,
    session: SessionDep,
    state: StateDep,
) -> User:
    """Deactivate, reactivate or change the role of an account (admins only). It takes effect
    on the account's next request: its cached snapshot and profile are dropped when this
    commits. Admins cannot deactivate or demote themselves, and the last active admin cannot
    be deactivated or demoted, even by two admins acting on each other at once."""
    return await user_service.admin_update(session, state, admin, user_id, changes)
