"""What the profile shows besides the user: recent activity and preferences (guide: "User
Management Flow")."""

from __future__ import annotations

from sqlalchemy import Boolean, ForeignKey, Index, String, true
from sqlalchemy.orm import Mapped, mapped_column

from reference_app.models.base import Model


class Activity(Model):
    """Something a user did (registered, logged in, created an item, placed an order)."""

    __tablename__ = "activities"
    __table_args__ = (Index("ix_activities_user_id_created_at", "user_id", "created_at"),)

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), nullable=False)
    kind: Mapped[str] = mapped_column(String(32), nullable=False)
    detail: Mapped[str | None] = mapped_column(String(200))


class UserPreferences(Model):
    __tablename__ = "user_preferences"

    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), nullable=False, unique=True
    )
    theme: Mapped[str] = mapped_column(
        String(16), nullable=False, default="light", server_default="light"
    )
    language: Mapped[str] = mapped_column(
        String(8), nullable=False, default="en", server_default="en"
    )
    email_notifications: Mapped[bool] = mapped_column(
        Boolean, nullable=False, default=True, server_default=true()
    )
