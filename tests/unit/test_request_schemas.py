"""Request bodies accept what their OpenAPI schema says and nothing it forbids (guide: "Type
Safety"): integers and flags in JSON are not coerced from booleans, fractions or strings, and an
integer written `3.0` is the integer JSON Schema says it is."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from reference_app.schemas.item import ItemCreate, ItemUpdate
from reference_app.schemas.order import InventoryUpdate, OrderCreate
from reference_app.schemas.profile import PreferencesUpdate
from reference_app.schemas.user import UserCreate

ITEM = {"title": "Lamp", "category": "home", "price": "9.99"}
USER = {"email": "a@example.com", "password": "password-1"}
# (model, a valid body, the field, values a lax parser would coerce)
STRICT_FIELDS: list[tuple[type[BaseModel], dict[str, Any], str, list[Any]]] = [
    (InventoryUpdate, {}, "quantity", [False, True, 1.5, "7"]),
    (ItemCreate, ITEM, "is_featured", [0, 1, "true", "yes"]),
    (ItemUpdate, {}, "is_featured", [0, 1, "false"]),
    (UserCreate, USER, "is_active", [0, 1, "true"]),
    (PreferencesUpdate, {}, "email_notifications", [0, 1, "on"]),
]


def _order(line: dict[str, Any]) -> dict[str, Any]:
    return {"items": [{"item_id": 1, "quantity": 1} | line]}


@pytest.mark.parametrize(
    ("model", "body", "name", "value"),
    [(m, b, n, v) for m, b, n, values in STRICT_FIELDS for v in values],
    ids=lambda x: x.__name__ if isinstance(x, type) else repr(x),
)
def test_ints_and_flags_in_a_body_are_not_coerced(
    model: type[BaseModel], body: dict[str, Any], name: str, value: Any
) -> None:
    with pytest.raises(ValidationError) as err:
        model.model_validate({**body, name: value})
    assert [e["loc"] for e in err.value.errors()] == [(name,)]


@pytest.mark.parametrize(
    "line",
    [{"item_id": True}, {"item_id": 1.5}, {"item_id": "1"}, {"quantity": False}, {"quantity": 2.5}],
)
def test_order_line_ids_and_quantities_are_json_integers(line: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        OrderCreate.model_validate(_order(line))


@pytest.mark.parametrize("body", ['{"quantity": 3.0}', '{"quantity": 3}', '{"quantity": 3e0}'])
def test_an_integer_written_with_a_point_is_the_integer_json_schema_says(body: str) -> None:
    quantity = InventoryUpdate.model_validate_json(body).quantity
    assert (quantity, type(quantity)) == (3, int)


def test_an_order_line_names_its_item_item_id_and_still_accepts_id() -> None:
    schema = OrderCreate.model_json_schema()["$defs"]["OrderLineIn"]
    assert set(schema["properties"]) == {"item_id", "quantity"}
    new = OrderCreate.model_validate_json('{"items": [{"item_id": 4, "quantity": 2.0}]}')
    old = OrderCreate.model_validate_json('{"items": [{"id": 4, "quantity": 2}]}')
    assert new == old
    assert (new.items[0].item_id, new.items[0].quantity) == (4, 2)
    with pytest.raises(ValidationError):  # one name per line, not both
        OrderCreate.model_validate({"items": [{"item_id": 4, "id": 4, "quantity": 1}]})


def test_an_item_on_several_lines_is_one_line_with_the_quantities_added_up() -> None:
    order = OrderCreate.model_validate(
        {
            "items": [
                {"item_id": 1, "quantity": 2},
                {"id": 2, "quantity": 1},
                {"item_id": 1, "quantity": 5},
            ]
        }
    )
    assert [(line.item_id, line.quantity) for line in order.items] == [(1, 7), (2, 1)]


def test_the_types_the_schema_names_are_still_accepted() -> None:
    assert InventoryUpdate.model_validate({"quantity": 0}).quantity == 0
    assert ItemCreate.model_validate({**ITEM, "is_featured": True}).is_featured is True
    assert UserCreate.model_validate({**USER, "is_active": False}).is_active is False
    prefs = PreferencesUpdate.model_validate({"email_notifications": False})
    assert prefs.email_notifications is False
    line = OrderCreate.model_validate(_order({"item_id": 2147483647, "quantity": 3})).items[0]
    assert (line.item_id, line.quantity) == (2147483647, 3)
