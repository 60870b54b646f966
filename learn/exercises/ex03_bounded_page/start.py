"""Exercise 3 — a bounded, stable page (guide: "Pagination").

`GET /products?skip=&limit=` lists the catalogue a page at a time. Today a client can ask for a
million rows or a negative offset (a 500 from PostgreSQL), and pages overlap or miss rows after
an update because nothing fixes their order. Bound `skip` (>= 0) and `limit` (1 to 100,
default 20) so bad values get a 422, and give the query a stable order.
"""

from __future__ import annotations

from fastapi import APIRouter
from sqlalchemy import func, select

from learn.models import Product
from learn.support import ProductOut, ProductPage, SessionDep

router = APIRouter()


@router.get("/products")
async def list_products(session: SessionDep, skip: int = 0, limit: int = 100) -> ProductPage:
    total = await session.scalar(select(func.count()).select_from(Product))
    rows = await session.scalars(select(Product).offset(skip).limit(limit))
    return ProductPage(
        items=[ProductOut.model_validate(row) for row in rows],
        total=total or 0,
        skip=skip,
        limit=limit,
    )
