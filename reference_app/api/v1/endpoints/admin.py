"""Admin-only views (guide: "Role-Based Access Control": the guide's `/admin/users` example)."""

from __future__ import annotations

from fastapi import APIRouter
from sqlalchemy import select

from patterns.errors import error_responses
from patterns.pagination import Page, PageParamsDep, paginate
from reference_app.core.deps import AdminUser, SessionDep
from reference_app.models.user import User
from reference_app.schemas.user import UserResponse

router = APIRouter(prefix="/admin", tags=["admin"])


@router.get("/users", response_model=Page[UserResponse], responses=error_responses(401, 403, 422))
async def list_users(
    admin: AdminUser, session: SessionDep, params: PageParamsDep
) -> Page[UserResponse]:
    """Every user, paginated (admins only)."""
    return await paginate(session, select(User).order_by(User.id), params, schema=UserResponse)
