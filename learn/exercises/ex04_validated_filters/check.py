"""Exercise 4's check: the filters select the right rows and every bad value is a 422."""

from types import ModuleType

import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

from learn.models import Product
from learn.support import make_app_on
from patterns.testing import make_client


async def _app(learner: ModuleType, session: AsyncSession) -> FastAPI:
    session.add_all(
        [
            Product(name="Dune", category="books", price_cents=900, stock=3),
            Product(name="Go", category="games", price_cents=2500, stock=1),
            Product(name="Hammer", category="tools", price_cents=1500, stock=7),
            Product(name="Atlas", category="books", price_cents=3000, stock=0),
        ]
    )
    await session.flush()

    return make_app_on(session, learner.router)


@pytest.mark.integration
async def test_filters_and_sort_select_the_right_rows(
    learner: ModuleType, db_session: AsyncSession
) -> None:
    async with make_client(await _app(learner, db_session), db_session) as client:
        response = await client.get(
            "/products/search",
            params={"category": "books", "min_price": 500, "max_price": 5000, "sort": "-price"},
        )
    assert response.status_code == 200, f"a valid search answered {response.status_code}"
    names = [p["name"] for p in response.json()]
    assert names == ["Atlas", "Dune"], (
        f"books between 5 and 50, dearest first, gave {names}; expected ['Atlas', 'Dune']"
    )


BAD = {
    "sort by a column that is not offered": {"sort": "stock"},
    "sort by something that is not a column": {"sort": "metadata"},
    "an unknown category": {"category": "food"},
    "a negative price": {"min_price": "-5"},
    "min_price above max_price": {"min_price": "5000", "max_price": "100"},
    "a misspelt filter": {"categroy": "books"},
}


@pytest.mark.integration
@pytest.mark.parametrize("case", list(BAD))
async def test_a_bad_filter_is_a_422(
    learner: ModuleType, db_session: AsyncSession, case: str
) -> None:
    async with make_client(
        await _app(learner, db_session), db_session, raise_app_exceptions=False
    ) as client:
        response = await client.get("/products/search", params=BAD[case])
    asked = "&".join(f"{k}={v}" for k, v in BAD[case].items())
    assert response.status_code == 422, (
        f"{case} (?{asked}) answered {response.status_code}; expected 422 from the filter model"
    )
