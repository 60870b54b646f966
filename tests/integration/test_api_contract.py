"""The OpenAPI document is the contract (guide: "API Endpoints", "Type Safety"), on real
PostgreSQL and Redis: an undeclared method is a 405 naming every method of the path, before
authentication; links lead from what a request created to the operations that take it; the
schema says what the validation accepts. tests/integration/test_schema_fuzz.py checks the same
with schemathesis against the running server."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import FastAPI
from httpx import AsyncClient

from reference_app.models.user import Role
from tests.integration.conftest import AccountFactory

API = "/api/v1"


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("OPTIONS", "/items", "GET, POST"),
        ("PUT", "/items", "GET, POST"),
        ("OPTIONS", "/items/7", "GET, PATCH, DELETE"),
        ("POST", "/items/7", "GET, PATCH, DELETE"),
        ("PATCH", "/items/featured", "GET"),  # not the {item_id} route: no 401 first
        ("DELETE", "/items/scroll", "GET"),
        ("DELETE", "/orders", "GET, POST"),
        ("PUT", "/users/me", "GET, PATCH"),
        ("GET", "/items/7/inventory", "PUT"),
        ("GET", "/auth/login", "POST"),
    ],
)
async def test_an_undeclared_method_is_405_with_every_method_of_the_path_before_auth(
    client: AsyncClient, method: str, path: str, allow: str
) -> None:
    r = await client.request(method, f"{API}{path}")  # no credentials: 405 comes first
    assert r.status_code == 405, r.text
    assert r.headers["Allow"] == allow
    error = r.json()["error"]
    assert error["code"] == "method_not_allowed"
    assert error["request_id"] == r.headers["X-Request-ID"]


async def test_a_path_id_never_matches_a_sibling_word_and_a_bad_number_is_still_422(
    client: AsyncClient,
) -> None:
    assert (await client.get(f"{API}/items/featured")).status_code == 200
    r = await client.get(f"{API}/items/-1")
    assert r.status_code == 422
    assert r.json()["error"]["details"][0]["loc"] == ["path", "item_id"]


def _resolve(expression: str, response: dict[str, Any], request: dict[str, Any]) -> Any:
    """The runtime expressions the document's links use: `$response.body#/…`, `$request.body#/…`."""
    source, pointer = expression.split("#", 1)
    value: Any = {"$response.body": response, "$request.body": request}[source]
    for part in pointer.strip("/").split("/"):
        value = value[int(part)] if isinstance(value, list) else value[part]
    return value


def _operations_by_id(document: dict[str, Any]) -> dict[str, tuple[str, str]]:
    return {
        op["operationId"]: (method.upper(), path)
        for path, item in document["paths"].items()
        for method, op in item.items()
    }


async def test_links_lead_from_a_created_item_to_the_operations_that_take_its_id(
    app: FastAPI, client: AsyncClient, make_account: AccountFactory
) -> None:
    document = app.openapi()
    by_id = _operations_by_id(document)
    links = document["paths"][f"{API}/items"]["post"]["responses"]["201"]["links"]
    assert {by_id[link["operationId"]] for link in links.values()} == {
        ("GET", f"{API}/items/{{item_id}}"),
        ("PATCH", f"{API}/items/{{item_id}}"),
        ("DELETE", f"{API}/items/{{item_id}}"),
        ("PUT", f"{API}/items/{{item_id}}/inventory"),
    }
    admin = await make_account(Role.ADMIN)
    sent = {"title": "Linked", "category": "links", "price": "3.50"}
    created = await client.post(f"{API}/items", headers=admin.headers, json=sent)
    assert created.status_code == 201, created.text
    # Follow the links as a generated client would: the parameters come from the response.
    expected = {"GET": 200, "PATCH": 200, "PUT": 200, "DELETE": 204}
    for name in ("GetItem", "UpdateItem", "SetInventory", "DeleteItem"):
        method, template = by_id[links[name]["operationId"]]
        params = {
            k: _resolve(v, created.json(), sent) for k, v in links[name]["parameters"].items()
        }
        body = {"PATCH": {"title": "Followed"}, "PUT": {"quantity": 2}}.get(method)
        r = await client.request(
            method, template.format(**params), headers=admin.headers, json=body
        )
        assert r.status_code == expected[method], (name, r.text)


async def test_links_lead_from_a_login_to_a_refresh_with_its_token(
    app: FastAPI, client: AsyncClient, make_account: AccountFactory
) -> None:
    document = app.openapi()
    by_id = _operations_by_id(document)
    login = document["paths"][f"{API}/auth/login"]["post"]["responses"]["200"]["links"]["Refresh"]
    assert by_id[login["operationId"]] == ("POST", f"{API}/auth/refresh")
    register = document["paths"][f"{API}/auth/register"]["post"]["responses"]["201"]["links"]
    assert by_id[register["LogIn"]["operationId"]] == ("POST", f"{API}/auth/login")

    sent = {"email": "linked@example.com", "password": "linked-password-1"}
    assert (await client.post(f"{API}/auth/register", json=sent)).status_code == 201
    form = {k: _resolve(v, {}, sent) for k, v in register["LogIn"]["requestBody"].items()}
    tokens = await client.post(f"{API}/auth/login", data=form)
    assert tokens.status_code == 200, tokens.text
    body = {k: _resolve(v, tokens.json(), form) for k, v in login["requestBody"].items()}
    assert (await client.post(f"{API}/auth/refresh", json=body)).status_code == 200


async def test_a_stocked_item_links_to_an_order_of_it_and_the_order_to_its_read(
    app: FastAPI, client: AsyncClient, make_account: AccountFactory
) -> None:
    document = app.openapi()
    stocked = document["paths"][f"{API}/items/{{item_id}}/inventory"]["put"]["responses"]["200"]
    order_one = stocked["links"]["OrderOne"]["requestBody"]
    created = document["paths"][f"{API}/orders"]["post"]["responses"]["201"]["links"]
    admin = await make_account(Role.ADMIN)
    item = await client.post(
        f"{API}/items", headers=admin.headers, json={"title": "O", "category": "o", "price": 1}
    )
    stock = await client.put(
        f"{API}/items/{item.json()['id']}/inventory", headers=admin.headers, json={"quantity": 1}
    )
    line = {
        k: _resolve(v, stock.json(), {}) if isinstance(v, str) and v.startswith("$") else v
        for k, v in order_one["items"][0].items()
    }
    order = await client.post(f"{API}/orders", headers=admin.headers, json={"items": [line]})
    assert order.status_code == 201, order.text
    order_id = _resolve(created["GetOrder"]["parameters"]["order_id"], order.json(), {})
    r = await client.get(f"{API}/orders/{order_id}", headers=admin.headers)
    assert r.status_code == 200
    assert r.json()["lines"] == order.json()["lines"]


async def test_a_repeated_query_parameter_is_refused_not_silently_the_last(
    client: AsyncClient,
) -> None:
    r = await client.get(f"{API}/items", params=[("q", "lamp"), ("q", "desk")])
    assert r.status_code == 422
    assert r.json()["error"]["details"] == [
        {"loc": ["query", "q"], "msg": "given more than once", "type": "repeated"}
    ]


@pytest.mark.parametrize(
    ("value", "status"),
    [("", 422), ("1e2", 200), ("0.35000000000000003", 200), ("-1", 422), ("abc", 422)],
)
async def test_a_price_filter_is_a_number_as_documented(
    app: FastAPI, client: AsyncClient, value: str, status: int
) -> None:
    (param,) = [
        p
        for p in app.openapi()["paths"][f"{API}/items"]["get"]["parameters"]
        if p["name"] == "max_price"
    ]
    assert param["schema"]["anyOf"][0]["type"] == "number"
    r = await client.get(f"{API}/items", params={"max_price": value})
    assert r.status_code == status, r.text


async def test_the_document_states_what_the_validation_refuses(
    app: FastAPI, client: AsyncClient, make_account: AccountFactory
) -> None:
    schemas = app.openapi()["components"]["schemas"]
    price = schemas["ItemCreate"]["properties"]["price"]["anyOf"]
    assert price[1] == {"type": "string", "pattern": r"^[0-9]{1,8}(\.[0-9]{1,2})?$"}
    assert schemas["ItemCreate"]["properties"]["title"]["pattern"] == "^[^\\x00]*$"
    assert schemas["UserUpdateMe"]["then"]["required"] == ["current_password"]
    # What the document allows is accepted: `.test` addresses (reserved for testing), a new
    # password with the current one.
    sent = {"email": "new@fuzz.test", "password": "test-password-1"}
    assert (await client.post(f"{API}/auth/register", json=sent)).status_code == 201
    me = await make_account()
    change = {"password": "another-password-1", "current_password": me.password}
    assert (
        await client.patch(f"{API}/users/me", headers=me.headers, json=change)
    ).status_code == 200
    # And what it forbids is refused.
    other = await make_account()
    r = await client.patch(
        f"{API}/users/me", headers=other.headers, json={"password": "another-password-1"}
    )
    assert r.status_code == 422
