"""Recording what users do, for their profile (guide: "User Management Flow")."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from reference_app.models.profile import Activity


def record(session: AsyncSession, user_id: int, kind: str, detail: str | None = None) -> None:
    """Add an activity row to the current unit of work (flushed with the rest of it)."""
    session.add(Activity(user_id=user_id, kind=kind, detail=detail[:200] if detail else None))
