"""Every model, imported so `Base.metadata` is complete (Alembic autogenerate relies on it)."""

from reference_app.models.base import Base, Model
from reference_app.models.item import Inventory, Item
from reference_app.models.order import Order, OrderItem, OrderStatus, Payment, PaymentStatus
from reference_app.models.outbox import OutboxMessage
from reference_app.models.profile import Activity, UserPreferences
from reference_app.models.user import Role, User

__all__ = [
    "Activity",
    "Base",
    "Inventory",
    "Item",
    "Model",
    "Order",
    "OrderItem",
    "OrderStatus",
    "OutboxMessage",
    "Payment",
    "PaymentStatus",
    "Role",
    "User",
    "UserPreferences",
]
