"""What the exercises take as given: the shop's app factory, its session, tokens and schemas.

The learner's files import from here and from `patterns`; the checks build their small apps with
`make_app` or `make_app_on`. Nothing here is an exercise: it is the stable ground the exercises
stand on.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession

from learn.models import Account, Order, Product
from patterns.db.session import session_scope
from patterns.errors import AppError, install_error_handlers
from patterns.security.jwt import TokenService, TokenType

SECRET = (
    "learn-the-stack-exercises-only-" + "0123456789abcdef" * 3
)  # 79 bytes: enough for HS512 too
ISSUER = AUDIENCE = "learn"

tokens = TokenService(SECRET, issuer=ISSUER, audience=AUDIENCE)
_bearer = HTTPBearer(auto_error=False)


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """The shop's request session (the kit's session scope); checks override it with theirs."""
    async with session_scope(request.app.state.sessions) as session:
        yield session


SessionDep = Annotated[AsyncSession, Depends(get_session)]


async def optional_account(
    session: SessionDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Account | None:
    """The account a valid access token names, or None (no token, a bad one, or no such account).

    Deciding what None means (401) and what a known account without the right role means (403)
    is the role-check exercise's job."""
    if credentials is None:
        return None
    try:
        claims = tokens.decode(credentials.credentials, TokenType.ACCESS)
    except AppError:
        return None
    if not claims.sub.isdigit():
        return None
    return await session.get(Account, int(claims.sub))


def access_token_for(account: Account) -> str:
    """A valid access token for `account` (what a login would hand out)."""
    token, _ = tokens.create(account.id, TokenType.ACCESS)
    return token


def make_app(*routers: APIRouter) -> FastAPI:
    """A FastAPI app with the kit's error envelope and the given routers."""
    app = FastAPI()
    install_error_handlers(app)
    for router in routers:
        app.include_router(router)
    return app


def make_app_on(session: AsyncSession, *routers: APIRouter) -> FastAPI:
    """`make_app`, with every request given `session` (a check's own, rolled back after it)."""

    async def override() -> AsyncIterator[AsyncSession]:
        yield session

    app = make_app(*routers)
    app.dependency_overrides[get_session] = override
    return app


class ProductOut(BaseModel):
    """A product as the shop's listings answer it."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    category: str
    price_cents: int


class ProductPage(BaseModel):
    """One page of a listing, with the total and the bounds that produced it."""

    items: list[ProductOut]
    total: int
    skip: int
    limit: int


async def add_order(session: AsyncSession, product_id: int, quantity: int) -> Order:
    """A new order in `session`'s transaction, flushed so it has its id (not committed)."""
    order = Order(product_id=product_id, quantity=quantity)
    session.add(order)
    await session.flush()
    return order


def product_key(product_id: int) -> str:
    """The cache key of one product's JSON."""
    return f"learn:product:{product_id}"


async def read_product(session: AsyncSession, redis: Redis, product_id: int) -> dict[str, Any]:
    """Read-through cache: the cached JSON, else the row (then cached for five minutes)."""
    cached = await redis.get(product_key(product_id))
    if cached is not None:
        return dict(json.loads(cached))
    product = await session.get_one(Product, product_id)
    data = {"id": product.id, "name": product.name, "price_cents": product.price_cents}
    await redis.set(product_key(product_id), json.dumps(data), ex=300)
    return data
