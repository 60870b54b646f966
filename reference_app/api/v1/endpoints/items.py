"""The catalog (guide: "Pagination", "Filtering", "CRUD Operations"): public reads, writes by the
owner, a manager or an admin, and stock managed by staff."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response, status
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError

from patterns.cache import Cache
from patterns.db import utcnow
from patterns.errors import ConflictError, NotFoundError, PermissionDeniedError, error_responses
from patterns.pagination import (
    CursorPage,
    CursorParamsDep,
    Keyset,
    Page,
    PageParamsDep,
    paginate,
    paginate_keyset,
)
from patterns.validation import IdPath
from reference_app.core.cache import FEATURED, FEATURED_LIMIT, FEATURED_TAG, CacheDep, user_tag
from reference_app.core.deps import CurrentUser, SessionDep, StaffUser
from reference_app.crud import activity
from reference_app.crud.item import items
from reference_app.crud.profile import featured_items
from reference_app.models.item import Inventory, Item
from reference_app.models.user import Role
from reference_app.schemas.item import ItemCreate, ItemFilter, ItemResponse, ItemUpdate
from reference_app.schemas.order import InventoryResponse, InventoryUpdate
from reference_app.schemas.user import Principal

router = APIRouter(prefix="/items", tags=["items"])
ItemFilters = Annotated[ItemFilter, Query()]


def _ensure_can_edit(user: Principal, item: Item) -> None:
    if item.owner_id != user.id and user.roles.isdisjoint({Role.MANAGER, Role.ADMIN}):
        raise PermissionDeniedError("Only the owner, a manager or an admin may change this item.")


@router.get("", response_model=Page[ItemResponse], responses=error_responses(422))
async def list_items(
    session: SessionDep, params: PageParamsDep, filters: ItemFilters
) -> Page[ItemResponse]:
    """Items, filtered and paginated: one COUNT and one SELECT, whatever the page size."""
    stmt = filters.apply(select(Item)).order_by(Item.id)
    return await paginate(session, stmt, params, schema=ItemResponse)


@router.get("/scroll", response_model=CursorPage[ItemResponse], responses=error_responses(422))
async def scroll_items(
    session: SessionDep, params: CursorParamsDep, filters: ItemFilters
) -> CursorPage[ItemResponse]:
    """Keyset pages for deep scrolling: pass `next_cursor` back as `cursor`."""
    stmt = filters.apply(select(Item))
    return await paginate_keyset(session, stmt, Keyset(Item.id), params, schema=ItemResponse)


@router.get("/featured", response_model=list[ItemResponse])
async def featured(session: SessionDep, cache: CacheDep) -> list[ItemResponse]:
    """Featured items, cached (Redis, with a 5 s in-process tier); served from the database
    when Redis is unreachable."""

    async def load() -> list[ItemResponse]:
        rows = await featured_items(session, FEATURED_LIMIT)
        return [ItemResponse.model_validate(i) for i in rows]

    return await cache.get_or_set(
        FEATURED,
        load,
        parts={"limit": FEATURED_LIMIT},
        tags=[FEATURED_TAG],
        model=list[ItemResponse],
    )


def _changed(cache: Cache, session: SessionDep, user_id: int) -> None:
    """An item write changes the featured list and its owner's profile: drop both after commit."""
    cache.invalidate_on_commit(session, tags=[FEATURED_TAG, user_tag(user_id)])


@router.post(
    "",
    response_model=ItemResponse,
    status_code=status.HTTP_201_CREATED,
    responses=error_responses(401, 422),
)
async def create_item(
    item_in: ItemCreate, user: CurrentUser, session: SessionDep, cache: CacheDep
) -> Item:
    """Create an item you own, with an empty stock."""
    item = await items.create(session, item_in, owner_id=user.id)
    session.add(Inventory(item_id=item.id, quantity=0))
    activity.record(session, user.id, "item_created", item.title)
    _changed(cache, session, user.id)
    return item


@router.get("/{item_id:id}", response_model=ItemResponse, responses=error_responses(404, 422))
async def read_item(item_id: IdPath, session: SessionDep) -> Item:
    """One item."""
    return await items.get_or_404(session, item_id)


@router.patch(
    "/{item_id:id}", response_model=ItemResponse, responses=error_responses(401, 403, 404, 422)
)
async def update_item(
    item_id: IdPath, changes: ItemUpdate, user: CurrentUser, session: SessionDep, cache: CacheDep
) -> Item:
    """Change an item (owner, manager or admin)."""
    # FOR NO KEY UPDATE: a concurrent delete waits (or wins, and this is a 404), while orders,
    # whose lines only key-share the item, go on.
    item = await items.get_or_404(session, item_id, lock={"key_share": True})
    _ensure_can_edit(user, item)
    _changed(cache, session, item.owner_id)
    return await items.update(session, item, changes)


@router.delete(
    "/{item_id:id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,  # no body, so no Content-Type (the default class says JSON)
    responses=error_responses(401, 403, 404, 409, 422),
)
async def delete_item(
    item_id: IdPath, user: CurrentUser, session: SessionDep, cache: CacheDep
) -> None:
    """Delete an item (owner, manager or admin); an item that was ordered is kept (409)."""
    # Lock as an order does, inventory row first, then the item: the database cascades the
    # delete from the item to its inventory, and an order that reserved stock then key-shares
    # the item for its lines; taken the other way round the two deadlock.
    await session.execute(
        select(Inventory.id).where(Inventory.item_id == item_id).with_for_update()
    )
    item = await items.get_or_404(session, item_id, lock=True)
    _ensure_can_edit(user, item)
    _changed(cache, session, item.owner_id)
    try:
        await items.delete(session, item)
    except IntegrityError:
        raise ConflictError(
            "This item appears in orders and cannot be deleted.", code="item_in_use"
        ) from None


@router.put(
    "/{item_id:id}/inventory",
    response_model=InventoryResponse,
    responses=error_responses(401, 403, 404, 422),
)
async def set_inventory(
    item_id: IdPath, body: InventoryUpdate, staff: StaffUser, session: SessionDep
) -> Inventory:
    """Set an item's stock (managers and admins).

    One upsert: two first stockings at once cannot both insert, and it locks only the inventory
    row, as orders and deletes take it first.
    """
    await items.get_or_404(session, item_id)
    dialect = session.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    values = insert(Inventory).values(item_id=item_id, quantity=body.quantity)
    upsert = values.on_conflict_do_update(
        index_elements=[Inventory.item_id],
        set_={"quantity": values.excluded.quantity, "updated_at": utcnow()},
    ).returning(Inventory)
    try:
        rows = await session.scalars(upsert, execution_options={"populate_existing": True})
    except IntegrityError:  # the item was deleted after it was read
        raise NotFoundError(f"Item {item_id} was not found.") from None
    inventory: Inventory = rows.one()
    return inventory
