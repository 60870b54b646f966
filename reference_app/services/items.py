"""The catalog's writes: create, change and delete an item, and set its stock (guide: "CRUD
Operations", "Redis Caching": "Cache Invalidation").

An item write changes what two cached answers show: the featured items, and its owner's
profile (a new activity, for a creation). Each flow drops both, by tag, once it has committed
(`invalidate_on_commit`); a rolled-back write drops nothing.
"""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from patterns.errors import ConflictError, NotFoundError, PermissionDeniedError
from reference_app.core.cache import FEATURED_LIMIT, FEATURED_TAG, user_tag
from reference_app.core.state import AppState
from reference_app.crud.activity import activities
from reference_app.crud.item import inventories, items
from reference_app.models.item import Inventory, Item
from reference_app.schemas.item import ItemCreate, ItemResponse, ItemUpdate
from reference_app.schemas.user import Principal


async def create_item(
    session: AsyncSession, state: AppState, user: Principal, item_in: ItemCreate
) -> Item:
    """Create an item owned by `user`, with an empty stock."""
    item = await items.create(session, item_in, owner_id=user.id)
    session.add(Inventory(item_id=item.id, quantity=0))
    activities.record(session, user.id, "item_created", item.title)
    state.redis.cache.invalidate_on_commit(session, tags=[FEATURED_TAG, user_tag(user.id)])
    return item


async def update_item(
    session: AsyncSession, state: AppState, user: Principal, item_id: int, changes: ItemUpdate
) -> Item:
    """Change an item (its owner, a manager or an admin)."""
    # FOR NO KEY UPDATE: a concurrent delete waits (or wins, and this is a 404), while orders,
    # whose lines only key-share the item, go on.
    item = await items.get_or_404(session, item_id, lock={"key_share": True})
    _ensure_can_edit(user, item)
    state.redis.cache.invalidate_on_commit(session, tags=[FEATURED_TAG, user_tag(item.owner_id)])
    return await items.update(session, item, changes)


async def delete_item(
    session: AsyncSession, state: AppState, user: Principal, item_id: int
) -> None:
    """Delete an item (its owner, a manager or an admin); an item that was ordered is kept
    (409)."""
    # Lock as an order does, stock row first, then the item: the database cascades the delete
    # from the item to its stock, and an order that reserved stock then key-shares the item
    # for its lines; taken the other way round the two deadlock.
    await inventories.lock_for_item(session, item_id)
    item = await items.get_or_404(session, item_id, lock=True)
    _ensure_can_edit(user, item)
    state.redis.cache.invalidate_on_commit(session, tags=[FEATURED_TAG, user_tag(item.owner_id)])
    try:
        await items.delete(session, item)
    except IntegrityError:
        raise ConflictError(
            "This item appears in orders and cannot be deleted.", code="item_in_use"
        ) from None


async def set_stock(session: AsyncSession, item_id: int, quantity: int) -> Inventory:
    """Set an item's stock (managers and admins). Nothing cached shows stock."""
    await items.get_or_404(session, item_id)
    try:
        return await inventories.set_quantity(session, item_id, quantity)
    except IntegrityError:  # the item was deleted after it was read
        raise NotFoundError(f"Item {item_id} was not found.") from None


async def load_featured(session: AsyncSession) -> list[ItemResponse]:
    """What the featured list shows (the endpoint and the warm-up cache it)."""
    rows = await items.featured(session, FEATURED_LIMIT)
    return [ItemResponse.model_validate(item) for item in rows]


def _ensure_can_edit(user: Principal, item: Item) -> None:
    if item.owner_id != user.id and not user.is_staff:
        raise PermissionDeniedError("Only the owner, a manager or an admin may change this item.")
