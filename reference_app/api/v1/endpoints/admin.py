"""Admin-only views (guide: "Role-Based Access Control": the guide's `/admin/users` example)."""

from __future__ import annotations

from fastapi import APIRouter
from sqlalchemy import select

from patterns.errors import BusinessRuleError, NotFoundError, error_responses
from patterns.pagination import Page, PageParamsDep, paginate
from patterns.validation import IdPath
from reference_app.core.cache import CacheDep, user_tag
from reference_app.core.deps import AdminUser, SessionDep
from reference_app.models.user import Role, User
from reference_app.schemas.user import UserAdminUpdate, UserResponse

router = APIRouter(prefix="/admin", tags=["admin"])


@router.get("/users", response_model=Page[UserResponse], responses=error_responses(401, 403, 422))
async def list_users(
    admin: AdminUser, session: SessionDep, params: PageParamsDep
) -> Page[UserResponse]:
    """Every user, paginated (admins only)."""
    return await paginate(session, select(User).order_by(User.id), params, schema=UserResponse)


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
    cache: CacheDep,
) -> User:
    """Deactivate, reactivate or change the role of an account (admins only). It takes effect
    on the account's next request: its cached snapshot and profile are dropped when this
    commits. Admins cannot deactivate or demote themselves, and the last active admin cannot
    be deactivated or demoted, even by two admins acting on each other at once."""
    user = await session.get(User, user_id)
    if user is None:
        raise NotFoundError(f"User {user_id} was not found.", code="user_not_found")
    demoted = changes.role is not None and changes.role is not Role.ADMIN
    if user.id == admin.id and (changes.is_active is False or demoted):
        raise BusinessRuleError(
            "Admins cannot deactivate or demote themselves.", code="self_lockout"
        )
    if user.role == Role.ADMIN.value and user.is_active and (changes.is_active is False or demoted):
        # Lock the active admins' rows: two admins removing each other wait for one another
        # here, and the second sees what the first left (PostgreSQL re-reads locked rows).
        admins = await session.scalars(
            select(User.id)
            .where(User.role == Role.ADMIN.value, User.is_active.is_(True))
            .order_by(User.id)
            .with_for_update()
        )
        if set(admins.all()) <= {user.id}:
            raise BusinessRuleError(
                "The last active admin cannot be deactivated or demoted.", code="last_admin"
            )
    if changes.is_active is not None:
        user.is_active = changes.is_active
    if changes.role is not None:
        user.role = changes.role.value
    await session.flush()
    cache.invalidate_on_commit(session, tags=[user_tag(user.id)])  # the profile shows both
    return user
