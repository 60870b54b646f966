"""Users (guide: "SQLAlchemy Models", "Role-Based Access Control")."""

from __future__ import annotations

import enum

from sqlalchemy import Boolean, CheckConstraint, String, true
from sqlalchemy.orm import Mapped, mapped_column

from reference_app.models.base import Model


class Role(enum.StrEnum):
    ADMIN = "admin"
    MANAGER = "manager"
    USER = "user"


class User(Model):
    __tablename__ = "users"
    __table_args__ = (
        # Emails are stored lower-cased, so the unique index is case-insensitive on every backend.
        CheckConstraint("email = lower(email)", name="email_lowercase"),
        CheckConstraint("role IN ('admin', 'manager', 'user')", name="role_valid"),
    )

    email: Mapped[str] = mapped_column(String(320), unique=True, nullable=False)
    hashed_password: Mapped[str] = mapped_column(String(255), nullable=False)
    full_name: Mapped[str | None] = mapped_column(String(200))
    is_active: Mapped[bool] = mapped_column(
        Boolean, default=True, server_default=true(), nullable=False
    )
    role: Mapped[str] = mapped_column(
        String(16), default=Role.USER.value, server_default=Role.USER.value, nullable=False
    )

    @property
    def roles(self) -> frozenset[Role]:
        """The guide checks `role in current_user.roles`; one role per user here."""
        return frozenset({Role(self.role)})
