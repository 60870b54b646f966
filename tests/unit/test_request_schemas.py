"""Request bodies accept what their OpenAPI schema says and nothing it forbids (guide: "Type
Safety"): integers and flags in JSON are not coerced from booleans, floats or strings."""

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
    (InventoryUpdate, {}, "quantity", [False, True, 1.0, "7"]),
    (ItemCreate, ITEM, "is_featured", [0, 1, "true", "yes"]),
    (ItemUpdate, {}, "is_featured", [0, 1, "false"]),
    (UserCreate, USER, "is_active", [0, 1, "true"]),
    (PreferencesUpdate, {}, "email_notifications", [0, 1, "on"]),
]


def _order(line: dict[str, Any]) -> dict[str, Any]:
    return {"items": [{"id": 1, "quantity": 1} | line]}


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


@pytest.mark.parametrize("line", [{"id": True}, {"id": 1.0}, {"id": "1"}, {"quantity": False}])
def test_order_line_ids_and_quantities_are_json_integers(line: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        OrderCreate.model_validate(_order(line))


def test_the_types_the_schema_names_are_still_accepted() -> None:
    assert InventoryUpdate.model_validate({"quantity": 0}).quantity == 0
    assert ItemCreate.model_validate({**ITEM, "is_featured": True}).is_featured is True
    assert UserCreate.model_validate({**USER, "is_active": False}).is_active is False
    prefs = PreferencesUpdate.model_validate({"email_notifications": False})
    assert prefs.email_notifications is False
    line = OrderCreate.model_validate(_order({"id": 2147483647, "quantity": 3})).items[0]
    assert (line.id, line.quantity) == (2147483647, 3)
