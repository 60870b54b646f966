"""Exercise 3 — a bounded, stable page (guide: "Pagination").

`Query(ge=..., le=...)` turns an out-of-range value into a 422 before the endpoint runs, and
`order_by(Product.id)` (a unique column) gives every page the same order, so walking the pages
visits each row exactly once.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from sqlalchemy import func, select

from learn.models import Product
from learn.support import ProductOut, ProductPage, SessionDep

router = APIRouter()


@router.get("/products")
async def list_products(
    session: SessionDep,
    skip: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> ProductPage:
    total = await session.scalar(select(func.count()).select_from(Product))
    rows = await session.scalars(select(Product).order_by(Product.id).offset(skip).limit(limit))
    return ProductPage(
        items=[ProductOut.model_validate(row) for row in rows],
        total=total or 0,
        skip=skip,
        limit=limit,
    )
