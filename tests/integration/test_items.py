"""The catalog on real PostgreSQL (guide: "Pagination", "Filtering", "Missing Indexes")."""

from __future__ import annotations

import random
from decimal import Decimal
from typing import Any

import pytest
from httpx import AsyncClient
from sqlalchemy import insert, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from reference_app.models.item import Inventory, Item
from reference_app.models.user import Role
from tests.factories import ItemFactory
from tests.integration.conftest import Account, AccountFactory

ITEMS = "/api/v1/items"
CATEGORIES = ["books", "games", "tools", "music", "garden"]
TITLES = ["Red lamp", "Blue chair", "100% cotton", "snake_case guide", "Lamp oil", "Big red box"]


@pytest.fixture
async def owner(make_account: AccountFactory) -> Account:
    """The seeded items' owner."""
    return await make_account()


async def _seed(
    session: AsyncSession, owner_id: int, n: int, seed: int = 7
) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    rows = [
        {
            "title": f"{rng.choice(TITLES)} {i}",
            "category": rng.choice(CATEGORIES),
            "price": Decimal(rng.randint(0, 50_000)) / 100,
            "owner_id": owner_id,
        }
        for i in range(n)
    ]
    if not rows:
        return rows
    # One INSERT … RETURNING for all rows: the index test seeds 20,000, which ORM objects from
    # a factory would take seconds to build and flush.
    result = await session.execute(insert(Item).returning(Item.id), rows)
    for row, item_id in zip(rows, result.scalars(), strict=True):
        row["id"] = item_id
    await session.commit()  # a SAVEPOINT release: kept if a request later rolls back
    return rows


def _brute(rows: list[dict[str, Any]], f: dict[str, Any]) -> list[int]:
    def keep(r: dict[str, Any]) -> bool:
        if "category" in f and r["category"] != f["category"]:
            return False
        if "min_price" in f and r["price"] < Decimal(f["min_price"]):
            return False
        if "max_price" in f and r["price"] > Decimal(f["max_price"]):
            return False
        return not ("q" in f and f["q"].lower() not in r["title"].lower())

    return sorted(r["id"] for r in rows if keep(r))


async def test_filters_and_pages_agree_with_a_brute_force_filter(
    client: AsyncClient, owner: Account, db_session: AsyncSession
) -> None:
    rows = await _seed(db_session, owner.user.id, 300)
    rng = random.Random(11)
    cases: list[dict[str, Any]] = [{}, {"q": "%"}, {"q": "_"}, {"q": "RED"}, {"category": "none"}]
    for _ in range(40):
        f: dict[str, Any] = {}
        if rng.random() < 0.5:
            f["category"] = rng.choice(CATEGORIES)
        low = rng.randint(0, 500)
        if rng.random() < 0.5:
            f["min_price"] = str(low)
        if rng.random() < 0.5:
            f["max_price"] = str(rng.randint(low, 500))
        if rng.random() < 0.3:
            f["q"] = rng.choice(["lamp", "red", "oil", "cotton", "case"])
        cases.append(f)
    for f in cases:
        expected = _brute(rows, f)
        limit = rng.choice([7, 20, 100])
        seen: list[int] = []
        skip = 0
        while True:
            r = await client.get(ITEMS, params={**f, "skip": skip, "limit": limit})
            assert r.status_code == 200, (f, r.text)
            page = r.json()
            assert page["total"] == len(expected), f
            assert page["size"] == limit
            assert page["pages"] == -(-len(expected) // limit)
            assert page["page"] == skip // limit + 1
            if not page["items"]:
                break
            seen += [item["id"] for item in page["items"]]
            skip += limit
        assert seen == expected, f


@pytest.mark.parametrize(
    ("n", "limit", "skip", "expected"),
    [
        (0, 10, 0, {"total": 0, "pages": 0, "page": 1, "count": 0}),
        (20, 10, 10, {"total": 20, "pages": 2, "page": 2, "count": 10}),
        (25, 10, 20, {"total": 25, "pages": 3, "page": 3, "count": 5}),
        (25, 10, 30, {"total": 25, "pages": 3, "page": 4, "count": 0}),
    ],
    ids=["empty", "exact-multiple", "last-partial", "past-the-end"],
)
async def test_page_arithmetic_at_the_edges(
    client: AsyncClient,
    owner: Account,
    db_session: AsyncSession,
    n: int,
    limit: int,
    skip: int,
    expected: dict[str, int],
) -> None:
    await _seed(db_session, owner.user.id, n)
    page = (await client.get(ITEMS, params={"skip": skip, "limit": limit})).json()
    assert {k: page[k] for k in ("total", "pages", "page")} == {
        k: expected[k] for k in ("total", "pages", "page")
    }
    assert len(page["items"]) == expected["count"]


@pytest.mark.parametrize(
    "params",
    [
        {"skip": -1},
        {"limit": 0},
        {"limit": 101},
        {"limit": "ten"},
        {"min_price": "5", "max_price": "4"},
        {"min_price": "-1"},
        {"skip": str(2**63)},
        {"q": "a\x00b"},
        {"category": "x" * 51},
    ],
)
async def test_bad_list_parameters_are_422_in_the_envelope(
    client: AsyncClient, params: dict[str, str | int]
) -> None:
    r = await client.get(ITEMS, params=params)
    assert r.status_code == 422, r.text
    assert r.json()["error"]["code"] == "validation_error"


async def test_list_query_count_is_constant_in_the_number_of_items(
    client: AsyncClient,
    owner: Account,
    db_session: AsyncSession,
    assert_num_queries: Any,
) -> None:
    await _seed(db_session, owner.user.id, 5)
    with assert_num_queries(1):  # the page with its total in one statement
        r = await client.get(ITEMS, params={"limit": 100})
    assert len(r.json()["items"]) == 5
    await _seed(db_session, owner.user.id, 95, seed=8)
    with assert_num_queries(1):
        r = await client.get(ITEMS, params={"limit": 100})
    assert len(r.json()["items"]) == 100
    with assert_num_queries(2):  # past the end no row carries the total: a COUNT follows
        r = await client.get(ITEMS, params={"limit": 100, "skip": 100})
    assert (r.json()["items"], r.json()["total"]) == ([], 100)


async def test_filtered_list_query_uses_an_index_on_a_seeded_table(
    db_session: AsyncSession, owner: Account
) -> None:
    await _seed(db_session, owner.user.id, 20_000)
    await db_session.execute(text("ANALYZE items"))
    stmt = select(Item).where(Item.category == "books", Item.price.between(10, 20))
    compiled = stmt.compile(
        dialect=db_session.get_bind().dialect, compile_kwargs={"literal_binds": True}
    )
    plan = "\n".join(r[0] for r in await db_session.execute(text(f"EXPLAIN {compiled}")))
    assert "Seq Scan on items" not in plan, plan
    assert "ix_items_category_price" in plan, plan


async def test_keyset_scroll_walks_every_item_once(
    client: AsyncClient, owner: Account, db_session: AsyncSession
) -> None:
    rows = await _seed(db_session, owner.user.id, 55)
    seen: list[int] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 20, "category": "books"}
        if cursor:
            params["cursor"] = cursor
        page = (await client.get(f"{ITEMS}/scroll", params=params)).json()
        seen += [i["id"] for i in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == _brute(rows, {"category": "books"})
    r = await client.get(f"{ITEMS}/scroll", params={"cursor": "!!not-a-cursor!!"})
    assert r.status_code == 422


async def test_owner_manager_admin_may_edit_others_may_not(
    client: AsyncClient, make_account: AccountFactory
) -> None:
    owner = await make_account()
    r = await client.post(
        ITEMS,
        headers=owner.headers,
        json={"title": "Lamp", "category": "home", "price": "12.50"},
    )
    assert r.status_code == 201, r.text
    item_id = r.json()["id"]
    assert r.json()["owner_id"] == owner.user.id
    stranger = await make_account()
    manager = await make_account(Role.MANAGER)
    admin = await make_account(Role.ADMIN)
    path = f"{ITEMS}/{item_id}"
    assert (await client.patch(path, json={"price": "1"})).status_code == 401
    assert (
        await client.patch(path, headers=stranger.headers, json={"price": "1"})
    ).status_code == 403
    for who, price in ((owner, "13.00"), (manager, "14.00"), (admin, "15.00")):
        r = await client.patch(path, headers=who.headers, json={"price": price})
        assert r.status_code == 200
        assert r.json()["price"] == price
    # As a read shows it; a JSON number is rounded to the cent, a string is plain notation.
    for sent, shown in (("2", "2.00"), (3, "3.00"), (1e2, "100.00"), (2.345, "2.34")):
        r = await client.patch(path, headers=owner.headers, json={"price": sent})
        assert r.json()["price"] == shown
        assert (await client.get(path)).json()["price"] == shown
    for sent in ("1e2", "", " 2", "2.345", "123456789"):  # what the price pattern refuses
        r = await client.patch(path, headers=owner.headers, json={"price": sent})
        assert r.status_code == 422, (sent, r.text)
    for field in ("title", "category", "price", "is_featured"):  # may be left out, not nulled
        r = await client.patch(path, headers=owner.headers, json={field: None})
        assert r.status_code == 422, (field, r.text)
    assert (await client.delete(path, headers=stranger.headers)).status_code == 403
    deleted = await client.delete(path, headers=manager.headers)
    assert deleted.status_code == 204
    assert deleted.content == b""
    assert "content-type" not in deleted.headers  # no body to describe
    assert (await client.get(path)).status_code == 404


async def test_item_ids_outside_the_column_range_are_422_not_500(client: AsyncClient) -> None:
    for bad in ("0", "-5", str(2**31), str(2**70), "1e3"):
        r = await client.get(f"{ITEMS}/{bad}")
        assert r.status_code == 422, (bad, r.text)
    # A word is never an id (so `featured` is never one): no route serves it.
    r = await client.get(f"{ITEMS}/abc")
    assert (r.status_code, r.json()["error"]["code"]) == (404, "not_found")


@pytest.mark.parametrize(
    ("role", "expected"),
    [(None, 401), (Role.USER, 403), (Role.MANAGER, 200), (Role.ADMIN, 200)],
)
async def test_inventory_is_set_by_managers_and_admins(
    client: AsyncClient,
    make_account: AccountFactory,
    db_session: AsyncSession,
    role: Role | None,
    expected: int,
) -> None:
    owner = await make_account()
    item = await ItemFactory.create_async(
        db_session, title="Stocked", category="x", price=Decimal("1.00"), owner_id=owner.user.id
    )
    headers = (await make_account(role)).headers if role else {}
    r = await client.put(f"{ITEMS}/{item.id}/inventory", headers=headers, json={"quantity": 7})
    assert r.status_code == expected, r.text
    if expected == 200:
        assert r.json()["quantity"] == 7
        stock = await db_session.scalar(
            select(Inventory.quantity).where(Inventory.item_id == item.id)
        )
        assert stock == 7
        r = await client.put(f"{ITEMS}/{item.id}/inventory", headers=headers, json={"quantity": -1})
        assert r.status_code == 422


@pytest.mark.parametrize("quantity", [False, True, 3.5, "3"])
async def test_inventory_quantity_must_be_a_json_integer_and_a_refusal_changes_nothing(
    client: AsyncClient, make_account: AccountFactory, db_session: AsyncSession, quantity: object
) -> None:
    manager = await make_account(Role.MANAGER)
    item = await ItemFactory.create_async(
        db_session,
        title="Stocked",
        category="x",
        price=Decimal("1.00"),
        owner_id=manager.user.id,
        stock=5,
    )
    await db_session.commit()
    r = await client.put(
        f"{ITEMS}/{item.id}/inventory", headers=manager.headers, json={"quantity": quantity}
    )
    assert r.status_code == 422, r.text
    assert r.json()["error"]["details"][0]["loc"] == ["body", "quantity"]
    stock = await db_session.scalar(select(Inventory.quantity).where(Inventory.item_id == item.id))
    assert stock == 5
