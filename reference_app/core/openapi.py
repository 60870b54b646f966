"""OpenAPI links (guide: "API Endpoints"): what a response gives that another operation takes.

A client generated from the document, or a stateful fuzzer, learns from them that the `id` a
`POST /items` returns is the `{item_id}` of `GET`, `PATCH` and `DELETE /items/{item_id}`, so it
can reach the data it created instead of guessing ids. Links carry parameters and bodies, not
credentials: from a login they lead to the operations that take its tokens in the body
(refresh); the bearer token of every other operation is the security scheme's business, which
links cannot set (docs: Decisions).

The links are declared here by method and path and resolved to operation ids when the document
is generated, so the endpoints keep their own decorators and ids unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI


@dataclass(frozen=True)
class Link:
    """`source` (method, path, status) → `target` (method, path), with runtime expressions."""

    name: str
    source: tuple[str, str, str]
    target: tuple[str, str]
    parameters: dict[str, str] = field(default_factory=dict)
    request_body: dict[str, Any] | None = None


ITEM_ID = {"item_id": "$response.body#/id"}
ORDER_ITEM = {"item_id": "$response.body#/item_id"}
ORDER_ID = {"order_id": "$response.body#/id"}
USER_ID = {"user_id": "$response.body#/id"}
CREATED_ITEM = ("post", "/items", "201")
CREATED_ORDER = ("post", "/orders", "201")
REPLAYED_ORDER = ("post", "/orders", "200")
REGISTERED = ("post", "/auth/register", "201")
CREATED_USER = ("post", "/users/", "201")
LOGGED_IN = ("post", "/auth/login", "200")
REFRESHED = ("post", "/auth/refresh", "200")
# The credentials a registration or an admin's account creation was sent with log that user in.
LOGIN_AS_CREATED = {"username": "$request.body#/email", "password": "$request.body#/password"}
REFRESH_WITH = {"refresh_token": "$response.body#/refresh_token"}
STOCKED = ("put", "/items/{item_id}/inventory", "200")
ORDER_ONE = {"items": [{"item_id": "$response.body#/item_id", "quantity": 1}]}

LINKS: tuple[Link, ...] = (
    Link("GetItem", CREATED_ITEM, ("get", "/items/{item_id}"), parameters=ITEM_ID),
    Link("UpdateItem", CREATED_ITEM, ("patch", "/items/{item_id}"), parameters=ITEM_ID),
    Link("DeleteItem", CREATED_ITEM, ("delete", "/items/{item_id}"), parameters=ITEM_ID),
    Link("SetInventory", CREATED_ITEM, ("put", "/items/{item_id}/inventory"), parameters=ITEM_ID),
    Link("OrderOne", STOCKED, ("post", "/orders"), request_body=ORDER_ONE),
    Link("GetStockedItem", STOCKED, ("get", "/items/{item_id}"), parameters=ORDER_ITEM),
    *(
        Link("GetOrder", source, ("get", "/orders/{order_id}"), parameters=ORDER_ID)
        for source in (CREATED_ORDER, REPLAYED_ORDER)
    ),
    *(
        Link("UpdateUser", source, ("patch", "/admin/users/{user_id}"), parameters=USER_ID)
        for source in (REGISTERED, CREATED_USER)
    ),
    *(
        Link("LogIn", source, ("post", "/auth/login"), request_body=LOGIN_AS_CREATED)
        for source in (REGISTERED, CREATED_USER)
    ),
    *(
        Link("Refresh", source, ("post", "/auth/refresh"), request_body=REFRESH_WITH)
        for source in (LOGGED_IN, REFRESHED)
    ),
)


def add_links(schema: dict[str, Any], links: tuple[Link, ...], *, prefix: str) -> None:
    """Write `links` into a generated document; paths are given without the API `prefix`."""
    paths = schema.get("paths", {})
    for link in links:
        method, path, status = link.source
        target_method, target_path = link.target
        source_op = paths[prefix + path][method]
        target_op = paths[prefix + target_path][target_method]
        entry: dict[str, Any] = {"operationId": target_op["operationId"]}
        if link.parameters:
            entry["parameters"] = dict(link.parameters)
        if link.request_body is not None:
            entry["requestBody"] = link.request_body
        response = source_op["responses"][status]
        response.setdefault("links", {})[link.name] = entry


def install_links(app: FastAPI, *, prefix: str, links: tuple[Link, ...] = LINKS) -> None:
    """Generate the app's document with `links` in it (once; FastAPI caches the result)."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = generate()
        add_links(schema, links, prefix=prefix)
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
