"""Users (guide: "SQLAlchemy Models", "Role-Based Access Control")."""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING

from sqlalchemy import Boolean, CheckConstraint, Integer, String, text, true
from sqlalchemy.orm import Mapped, mapped_column, relationship

from reference_app.models.base import Model

if TYPE_CHECKING:
    from reference_app.models.item import Item


class Role(enum.StrEnum):
    ADMIN = "admin"
    MANAGER = "manager"
    USER = "user"


# The roles that manage the catalog and read every order.
STAFF_ROLES = (Role.ADMIN, Role.MANAGER)


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
    # Bumped when the password changes; tokens carry the version they were issued under and
    # older ones are refused (`patterns.security.jwt`), so a new password ends old sessions.
    credentials_version: Mapped[int] = mapped_column(
        Integer, default=0, server_default=text("0"), nullable=False
    )

    # The guide's cascade, kept: deleting a user deletes their items (the database does it,
    # ON DELETE CASCADE, so nothing is loaded first). lazy="raise": load it explicitly.
    items: Mapped[list[Item]] = relationship(
        back_populates="owner", cascade="all, delete-orphan", passive_deletes=True, lazy="raise"
    )

    @property
    def roles(self) -> frozenset[Role]:
        """The guide checks `role in current_user.roles`; one role per user here."""
        return frozenset({Role(self.role)})
