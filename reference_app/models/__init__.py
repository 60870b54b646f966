"""Every model, imported so `Base.metadata` is complete (Alembic autogenerate relies on it)."""

from reference_app.models.base import Base, Model
from reference_app.models.user import Role, User

__all__ = ["Base", "Model", "Role", "User"]
