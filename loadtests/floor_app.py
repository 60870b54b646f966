"""The floor the kit's hot paths are measured against (`loadtests/floor.py`, docs/performance.md):
a bare FastAPI app as its documentation writes one, on the kit's own tables, ORM model and item
schema (so both answer the same JSON).

* `/ping`: the framework alone.
* `/items/{item_id}`: a bare async SQLAlchemy primary-key read (a session per request, as a
  dependency; `session.get`; a `response_model` read from the ORM object).
* `/items`: the same page as the kit's (a COUNT and a window of 100), bare.
* `/template/items`: the page as the official full-stack template writes it (a plain `def`
  endpoint on FastAPI's thread pool, a synchronous psycopg session, SQLAlchemy's default pool,
  the bearer token decoded and its user read from the database, as the template's `CurrentUser`
  does), the stand-in for the template when it is not deployed beside the kit.

Settings: `FLOOR_DATABASE_URL` (a `postgresql://` URL), `FLOOR_POOL_SIZE` (default 32, as the kit),
`KIT_SECRET_KEY` (the kit's, so the stand-in accepts the kit's tokens).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from typing import Annotated

import jwt
from fastapi import Depends, FastAPI, Header, HTTPException, Query
from pydantic import BaseModel
from sqlalchemy import create_engine, func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import Session

from patterns.db.engine import async_url, sync_url
from reference_app.models.item import Item
from reference_app.models.user import User
from reference_app.schemas.item import ItemResponse

_URL = os.environ.get("FLOOR_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/kit_floor")
_POOL = int(os.environ.get("FLOOR_POOL_SIZE", "32"))
engine = create_async_engine(async_url(_URL), pool_size=_POOL, max_overflow=0)
sessions = async_sessionmaker(engine, expire_on_commit=False)
sync_engine = create_engine(sync_url(_URL))  # the template's engine: SQLAlchemy's default pool

app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)


class ItemsPage(BaseModel):
    data: list[ItemResponse]
    count: int


async def get_session() -> AsyncIterator[AsyncSession]:
    async with sessions() as session:
        yield session


def get_sync_session() -> Iterator[Session]:
    with Session(sync_engine) as session:
        yield session


AsyncSessionDep = Annotated[AsyncSession, Depends(get_session)]
SyncSessionDep = Annotated[Session, Depends(get_sync_session)]
_SECRET = os.environ.get("KIT_SECRET_KEY", "")


def get_current_user(session: SyncSessionDep, authorization: Annotated[str, Header()]) -> User:
    """The template's `get_current_user`: decode the bearer token, read its user."""
    token = authorization.removeprefix("Bearer ")
    try:
        claims = jwt.decode(token, _SECRET, algorithms=["HS256"], options={"verify_aud": False})
    except jwt.InvalidTokenError:
        raise HTTPException(status_code=403, detail="Could not validate credentials") from None
    user = session.get(User, int(claims["sub"]))
    if user is None:
        raise HTTPException(status_code=404, detail="User not found")
    return user


CurrentUser = Annotated[User, Depends(get_current_user)]


@app.get("/ping")
async def ping() -> dict[str, str]:
    return {"status": "ok"}


@app.get("/items/{item_id}", response_model=ItemResponse)
async def read_item(item_id: int, session: AsyncSessionDep) -> Item:
    item = await session.get(Item, item_id)
    if item is None:
        raise HTTPException(status_code=404, detail="Item not found")
    return item


@app.get("/items", response_model=ItemsPage)
async def read_items(
    session: AsyncSessionDep, skip: int = 0, limit: Annotated[int, Query(le=100)] = 100
) -> ItemsPage:
    count = await session.scalar(select(func.count()).select_from(Item))
    rows = await session.scalars(select(Item).order_by(Item.id).offset(skip).limit(limit))
    return ItemsPage(data=[ItemResponse.model_validate(r) for r in rows], count=count or 0)


@app.get("/template/items", response_model=ItemsPage)
def read_items_template(
    session: SyncSessionDep,
    current_user: CurrentUser,
    skip: int = 0,
    limit: Annotated[int, Query(le=100)] = 100,
) -> ItemsPage:
    count = session.execute(select(func.count()).select_from(Item)).scalar_one()
    rows = session.scalars(select(Item).offset(skip).limit(limit)).all()
    return ItemsPage(data=[ItemResponse.model_validate(r) for r in rows], count=count)
