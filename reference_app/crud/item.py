"""Item data access: the guide's generic CRUD with the names clients may use declared."""

from __future__ import annotations

from typing import Any, ClassVar

from sqlalchemy.orm import QueryableAttribute, selectinload
from sqlalchemy.orm.interfaces import ORMOption

from patterns.crud import CRUDBase
from reference_app.models.item import Item
from reference_app.schemas.item import ItemCreate, ItemUpdate


class CRUDItem(CRUDBase[Item, ItemCreate, ItemUpdate]):
    filterable: ClassVar[dict[str, QueryableAttribute[Any]]] = {
        "category": Item.category,
        "owner_id": Item.owner_id,
        "is_featured": Item.is_featured,
    }
    loadable: ClassVar[dict[str, ORMOption]] = {
        "owner": selectinload(Item.owner),
        "inventory": selectinload(Item.inventory),
    }
    selectable: ClassVar[dict[str, QueryableAttribute[Any]]] = {
        "title": Item.title,
        "category": Item.category,
        "price": Item.price,
    }


items = CRUDItem(Item)
