"""The catalog (guide: "Pagination", "Filtering", "CRUD Operations"): public reads, writes by the
owner, a manager or an admin, and stock managed by staff. The writes are flows in
`reference_app/services/items.py`."""

from __future__ import annotations

from functools import partial
from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from patterns.errors import error_responses
from patterns.pagination import CursorPage, CursorParamsDep, Page, PageParamsDep
from patterns.responses import json_body, model_response, orm_response
from patterns.validation import IdPath
from reference_app.core.cache import FEATURED, FEATURED_LIMIT, FEATURED_TAG
from reference_app.core.db import ReadSessionDep, SessionDep
from reference_app.core.deps import CacheDep, CurrentUser, StaffUser, StateDep
from reference_app.crud.item import items
from reference_app.models.item import Inventory, Item
from reference_app.schemas.item import ItemCreate, ItemFilter, ItemResponse, ItemUpdate
from reference_app.schemas.order import InventoryResponse, InventoryUpdate
from reference_app.services import items as item_service

router = APIRouter(prefix="/items", tags=["items"])
ItemFilters = Annotated[ItemFilter, Query()]


@router.get("", response_model=Page[ItemResponse], responses=error_responses(422))
async def list_items(
    session: ReadSessionDep, params: PageParamsDep, filters: ItemFilters
) -> Response:
    """Items, filtered and paginated: the page and its total in one statement, whatever the
    page size."""
    page = await items.get_page(
        session, params, schema=ItemResponse, filters=filters, columns_only=True
    )
    # Validated once, from the rows; FastAPI would dump, validate and serialise it again.
    return model_response(page)


@router.get("/scroll", response_model=CursorPage[ItemResponse], responses=error_responses(422))
async def scroll_items(
    session: ReadSessionDep, params: CursorParamsDep, filters: ItemFilters
) -> CursorPage[ItemResponse]:
    """Keyset pages for deep scrolling: pass `next_cursor` back as `cursor`."""
    return await items.get_keyset_page(session, params, schema=ItemResponse, filters=filters)


@router.get("/featured", response_model=list[ItemResponse])
async def featured(session: ReadSessionDep, cache: CacheDep) -> Response:
    """Featured items, cached (Redis, with a 5 s in-process tier whose hits are answered before
    routing, `patterns/cache/edge.py`); served from the database when Redis is unreachable.
    Item writes drop it (`reference_app/services/items.py`)."""
    # A hit is the stored JSON as it is, with no validation or serialisation per request.
    body = await cache.get_or_set_json(
        FEATURED,
        partial(item_service.load_featured, session),
        parts={"limit": FEATURED_LIMIT},
        tags=[FEATURED_TAG],
        model=list[ItemResponse],
    )
    return json_body(body)


@router.post(
    "",
    response_model=ItemResponse,
    status_code=status.HTTP_201_CREATED,
    responses=error_responses(401, 422),
)
async def create_item(
    item_in: ItemCreate, user: CurrentUser, session: SessionDep, state: StateDep
) -> Item:
    """Create an item you own, with an empty stock."""
    return await item_service.create_item(session, state, user, item_in)


@router.get("/{item_id:id}", response_model=ItemResponse, responses=error_responses(404, 422))
async def read_item(item_id: IdPath, session: ReadSessionDep) -> Response:
    """One item."""
    return orm_response(ItemResponse, await items.get_or_404(session, item_id))


@router.patch(
    "/{item_id:id}", response_model=ItemResponse, responses=error_responses(401, 403, 404, 422)
)
async def update_item(
    item_id: IdPath, changes: ItemUpdate, user: CurrentUser, session: SessionDep, state: StateDep
) -> Item:
    """Change an item (owner, manager or admin)."""
    return await item_service.update_item(session, state, user, item_id, changes)


@router.delete(
    "/{item_id:id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,  # no body, so no Content-Type (the default class says JSON)
    responses=error_responses(401, 403, 404, 409, 422),
)
async def delete_item(
    item_id: IdPath, user: CurrentUser, session: SessionDep, state: StateDep
) -> None:
    """Delete an item (owner, manager or admin); an item that was ordered is kept (409)."""
    await item_service.delete_item(session, state, user, item_id)


@router.put(
    "/{item_id:id}/inventory",
    response_model=InventoryResponse,
    responses=error_responses(401, 403, 404, 422),
)
async def set_inventory(
    item_id: IdPath, body: InventoryUpdate, staff: StaffUser, session: SessionDep
) -> Inventory:
    """Set an item's stock (managers and admins)."""
    return await item_service.set_stock(session, item_id, body.quantity)
