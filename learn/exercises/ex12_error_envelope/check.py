"""Exercise 12's check: what a client sees from `POST /products/{id}/reserve`."""

from types import ModuleType

import pytest
from fastapi import APIRouter, FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

from learn.models import Product
from learn.support import SessionDep, make_app_on
from patterns.errors import NotFoundError
from patterns.testing import make_client


async def _setup(learner: ModuleType, session: AsyncSession) -> tuple[FastAPI, Product]:
    product = Product(name="lamp", category="tools", price_cents=1000, stock=2)
    session.add(product)
    await session.flush()
    router = APIRouter()

    @router.post("/products/{product_id}/reserve")
    async def reserve(product_id: int, quantity: int, session: SessionDep) -> dict[str, int]:
        found = await session.get(Product, product_id)
        if found is None:
            raise NotFoundError()
        learner.reserve(found, quantity)
        await session.flush()
        return {"stock": found.stock}

    app = make_app_on(session, router)
    return app, product


@pytest.mark.integration
async def test_out_of_stock_is_a_409_in_the_envelope(
    learner: ModuleType, db_session: AsyncSession
) -> None:
    app, product = await _setup(learner, db_session)
    async with make_client(app, db_session, raise_app_exceptions=False) as client:
        response = await client.post(f"/products/{product.id}/reserve", params={"quantity": 5})
    error = response.json().get("error", {})
    assert (response.status_code, error.get("code")) == (409, "out_of_stock"), (
        f"reserving 5 of 2 answered {response.status_code} {error.get('code')!r}; expected "
        "409 'out_of_stock': make OutOfStockError an AppError with that status_code and code"
    )
    message = str(error.get("message", ""))
    assert all(word in message for word in ("lamp", "2")), (
        f"the message {message!r} should name the product (lamp) and what is left (2)"
    )
    assert error.get("details") == [{"product_id": product.id, "available": 2}], (
        f"details are {error.get('details')!r}; expected "
        f"[{{'product_id': {product.id}, 'available': 2}}]"
    )


@pytest.mark.integration
async def test_enough_stock_is_reserved(learner: ModuleType, db_session: AsyncSession) -> None:
    app, product = await _setup(learner, db_session)
    async with make_client(app, db_session) as client:
        response = await client.post(f"/products/{product.id}/reserve", params={"quantity": 2})
    assert response.status_code == 200, f"reserving 2 of 2 answered {response.status_code}"
    assert response.json() == {"stock": 0}
