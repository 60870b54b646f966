"""Exercise 3's check: out-of-range pages are a 422, and walking the pages visits each row once."""

from types import ModuleType

import pytest
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from learn.models import Product
from learn.support import make_app_on
from patterns.testing import make_client


@pytest.mark.integration
@pytest.mark.parametrize(
    "query", [{"limit": "1000"}, {"limit": "0"}, {"skip": "-1"}], ids=["huge", "zero", "negative"]
)
async def test_out_of_range_is_a_422(
    learner: ModuleType, db_session: AsyncSession, query: dict[str, str]
) -> None:
    async with make_client(
        make_app_on(db_session, learner.router), raise_app_exceptions=False
    ) as client:
        response = await client.get("/products", params=query)
    asked = "&".join(f"{k}={v}" for k, v in query.items())
    assert response.status_code == 422, (
        f"GET /products?{asked} answered {response.status_code}; expected 422: bound skip "
        "(>= 0) and limit (1 to 100) with Query(ge=..., le=...)"
    )


@pytest.mark.integration
async def test_the_default_page_is_small(learner: ModuleType, db_session: AsyncSession) -> None:
    db_session.add_all(Product(name=f"p{i}", category="tools", price_cents=100) for i in range(30))
    await db_session.flush()
    async with make_client(make_app_on(db_session, learner.router), db_session) as client:
        body = (await client.get("/products")).json()
    assert len(body["items"]) <= 20, (
        f"with no limit asked, the page held {len(body['items'])} rows; default to 20"
    )


@pytest.mark.integration
async def test_pages_visit_every_row_once(learner: ModuleType, db_session: AsyncSession) -> None:
    products = [Product(name=f"p{i}", category="tools", price_cents=100) for i in range(25)]
    db_session.add_all(products)
    await db_session.flush()
    # Updated rows move within the table's storage: without an ORDER BY they come back later.
    changed = [p.id for p in products[:5]]
    await db_session.execute(update(Product).where(Product.id.in_(changed)).values(price_cents=150))
    seen: list[int] = []
    async with make_client(make_app_on(db_session, learner.router), db_session) as client:
        for skip in range(0, 25, 10):
            body = (await client.get("/products", params={"skip": skip, "limit": 10})).json()
            assert body["total"] == 25, f"total says {body['total']}, the table has 25 rows"
            seen += [item["id"] for item in body["items"]]
    expected = sorted(p.id for p in products)
    assert seen == expected, (
        "walking the pages (limit 10) gave the ids "
        f"{seen}, expected {expected}: without a stable order (ORDER BY a unique column) pages "
        "overlap or miss rows"
    )
