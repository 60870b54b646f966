"""Orders (guide: "Order Processing Flow"): placed atomically, processed by Celery after commit."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, BackgroundTasks, Header, Request, Response, status
from sqlalchemy import select

from patterns.db import on_commit
from patterns.errors import NotFoundError, error_responses
from patterns.pagination import Page, PageParamsDep, paginate
from patterns.validation import IdPath
from reference_app.core.cache import CacheDep, user_tag
from reference_app.core.deps import CurrentUser, SessionDep
from reference_app.core.metrics import ORDERS_CREATED
from reference_app.crud import order as order_crud
from reference_app.models.order import Order
from reference_app.models.user import Role
from reference_app.schemas.order import OrderCreate, OrderResponse
from reference_app.worker.enqueue import enqueue_process_order

router = APIRouter(prefix="/orders", tags=["orders"])

IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=128,
        pattern=r"^[A-Za-z0-9_.:\-]+$",
        description="Retrying with the same key returns the first order instead of a second.",
    ),
]


@router.post(
    "",
    response_model=OrderResponse,
    status_code=status.HTTP_201_CREATED,
    responses={
        200: {
            "model": OrderResponse,
            "description": "A retry with an Idempotency-Key already used for this body: the "
            "first order, unchanged (header Idempotent-Replayed: true).",
        },
        **error_responses(401, 404, 409, 422),
    },
)
async def create_order(
    order_in: OrderCreate,
    user: CurrentUser,
    session: SessionDep,
    request: Request,
    response: Response,
    cache: CacheDep,
    background: BackgroundTasks,
    idempotency_key: IdempotencyKey = None,
) -> Order:
    """Place an order: stock is reserved, the order, its lines and a payment intent are written
    together, and processing is queued once the transaction commits."""
    delay = request.app.state.settings.order_processing_delay_s
    celery = request.app.state.celery
    order, created = await order_crud.create_order(
        session,
        user_id=user.id,
        order_in=order_in,
        idempotency_key=idempotency_key,
        # Published after the response is sent (still only after the commit): the client
        # need not wait for the broker.
        enqueue=lambda s, order_id: enqueue_process_order(
            s, order_id, delay, app=celery, keep_result=False, after_response=background
        ),
    )
    if created:
        on_commit(session, ORDERS_CREATED.inc)
        cache.invalidate_on_commit(session, tags=[user_tag(user.id)])  # a new activity
        # No refresh: the lines and the payment were built here and are loaded already, and
        # timestamps are set in Python; re-selecting them was a quarter of this request's CPU
        # (docs/performance.md).
    else:
        response.status_code = status.HTTP_200_OK
        response.headers["Idempotent-Replayed"] = "true"
    return order


@router.get("", response_model=Page[OrderResponse], responses=error_responses(401, 422))
async def list_my_orders(
    user: CurrentUser, session: SessionDep, params: PageParamsDep
) -> Page[OrderResponse]:
    """Your orders, newest first, lines and payment loaded eagerly (four statements per page)."""
    stmt = (
        select(Order)
        .where(Order.user_id == user.id)
        .options(*order_crud.with_details())
        .order_by(Order.id.desc())
    )
    return await paginate(session, stmt, params, schema=OrderResponse)


@router.get(
    "/{order_id:id}", response_model=OrderResponse, responses=error_responses(401, 404, 422)
)
async def read_order(order_id: IdPath, user: CurrentUser, session: SessionDep) -> Order:
    """One order: its owner, managers and admins may read it (others get a 404, so order ids
    cannot be probed)."""
    order = await order_crud.get_with_details(session, order_id)
    staff = not user.roles.isdisjoint({Role.MANAGER, Role.ADMIN})
    if order is None or (order.user_id != user.id and not staff):
        raise NotFoundError(f"Order {order_id} was not found.", code="order_not_found")
    return order
