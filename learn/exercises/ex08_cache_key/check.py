"""Exercise 8's check: a cached `GET /me/orders` on real Redis, for two accounts and pages."""

import json
from types import ModuleType
from typing import Annotated, Any

import pytest
from fastapi import APIRouter, Depends, FastAPI, Request
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession

from learn.models import Account
from learn.support import access_token_for, make_app_on, optional_account
from patterns.testing import make_client


class Shop:
    def __init__(self, learner: ModuleType, session: AsyncSession, redis: Redis) -> None:
        self.computed = 0
        self.headers: dict[str, dict[str, str]] = {}
        router = APIRouter()

        @router.get("/me/orders")
        async def my_orders(
            request: Request,
            account: Annotated[Account | None, Depends(optional_account)],
            status: str = "any",
            page: int = 1,
        ) -> dict[str, Any]:
            account_id = account.id if account else None
            query = request.query_params.multi_items()
            key = learner.cache_key(request.url.path, query, account_id)
            cached = await redis.get(key)
            if cached is not None:
                return dict(json.loads(cached))
            self.computed += 1
            body = {"owner": account.email if account else None, "status": status, "page": page}
            await redis.set(key, json.dumps(body), ex=60)
            return body

        self.app: FastAPI = make_app_on(session, router)
        self.session = session

    async def login(self, email: str) -> dict[str, str]:
        account = Account(email=email, hashed_password="-")
        self.session.add(account)
        await self.session.flush()
        return {"Authorization": f"Bearer {access_token_for(account)}"}


@pytest.fixture
def shop(learner: ModuleType, db_session: AsyncSession, redis_client: Redis) -> Shop:
    """The learner's `cache_key` behind `GET /me/orders`, on this test's session and Redis."""
    return Shop(learner, db_session, redis_client)


@pytest.mark.integration
async def test_each_account_gets_its_own_entry(shop: Shop) -> None:
    ada, bob = await shop.login("ada@example.com"), await shop.login("bob@example.com")
    async with make_client(shop.app, shop.session) as client:
        first = (await client.get("/me/orders", headers=ada)).json()
        second = (await client.get("/me/orders", headers=bob)).json()
    assert first["owner"] == "ada@example.com"
    assert second["owner"] == "bob@example.com", (
        f"bob asked for his orders and got {second['owner']}'s from the cache: the key must "
        "include the account"
    )


@pytest.mark.integration
async def test_each_query_gets_its_own_entry(shop: Shop) -> None:
    ada = await shop.login("ada@example.com")
    async with make_client(shop.app, shop.session) as client:
        await client.get("/me/orders", params={"page": 1}, headers=ada)
        page2 = (await client.get("/me/orders", params={"page": 2}, headers=ada)).json()
        paid = (await client.get("/me/orders", params={"status": "paid"}, headers=ada)).json()
    assert page2["page"] == 2, (
        "?page=2 was answered with page 1 from the cache: the key must include every query "
        "parameter"
    )
    assert paid["status"] == "paid", "?status=paid was answered with another query's entry"


@pytest.mark.integration
async def test_parameter_order_shares_an_entry(shop: Shop) -> None:
    ada = await shop.login("ada@example.com")
    async with make_client(shop.app, shop.session) as client:
        await client.get("/me/orders?status=paid&page=2", headers=ada)
        again = (await client.get("/me/orders?page=2&status=paid", headers=ada)).json()
    assert again == {"owner": "ada@example.com", "status": "paid", "page": 2}
    assert shop.computed == 1, (
        "?status=paid&page=2 and ?page=2&status=paid are the same request but were computed "
        f"{shop.computed} times: sort the parameters in the key"
    )
