"""Orders (guide: "Order Processing Flow"): placed atomically, processed by Celery after commit.
Placing one is a flow in `reference_app/services/orders.py`."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Response, status

from patterns.errors import NotFoundError, error_responses
from patterns.pagination import Page, PageParamsDep
from patterns.validation import IdPath
from reference_app.core.db import SessionDep
from reference_app.core.deps import CurrentUser, StateDep
from reference_app.crud.order import orders
from reference_app.models.order import Order
from reference_app.schemas.order import OrderCreate, OrderResponse
from reference_app.services.orders import place_order

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
    state: StateDep,
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> Order:
    """Place an order: stock is reserved, the order, its lines and a payment intent are written
    together with the task that processes it (published by the outbox relay once the
    transaction commits)."""
    order, created = await place_order(
        session, state, user.id, order_in, idempotency_key=idempotency_key
    )
    if not created:
        response.status_code = status.HTTP_200_OK
        response.headers["Idempotent-Replayed"] = "true"
    return order


@router.get("", response_model=Page[OrderResponse], responses=error_responses(401, 422))
async def list_my_orders(
    user: CurrentUser, session: SessionDep, params: PageParamsDep
) -> Page[OrderResponse]:
    """Your orders, newest first, lines and payment loaded eagerly (four statements per page)."""
    return await orders.get_page(
        session,
        params,
        schema=OrderResponse,
        where=[Order.user_id == user.id],
        order_by=[Order.id.desc()],
        options=orders.details,
    )


@router.get(
    "/{order_id:id}", response_model=OrderResponse, responses=error_responses(401, 404, 422)
)
async def read_order(order_id: IdPath, user: CurrentUser, session: SessionDep) -> Order:
    """One order: its owner, managers and admins may read it (others get a 404, so order ids
    cannot be probed)."""
    order = await orders.get(session, order_id, options=orders.details)
    if order is None or (order.user_id != user.id and not user.is_staff):
        raise NotFoundError(f"Order {order_id} was not found.", code="order_not_found")
    return order
