"""Cache keys: canonical, complete, and why the guide's `str(args)` key is an erratum."""

from __future__ import annotations

import enum
import re
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

from patterns.cache import CacheSpec, canonical_json, make_key

SPEC = CacheSpec("items.list", ttl=60)

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
parts_strategy = st.dictionaries(st.text(max_size=8), json_values, max_size=5)


def test_key_layout_is_prefix_namespace_version_and_a_sha256() -> None:
    key = make_key("kit", CacheSpec("items.featured", ttl=60, version=3), {"limit": 10})
    assert re.fullmatch(r"kit:items\.featured:v3:[0-9a-f]{64}", key)


def test_canonical_json_sorts_keys_and_has_no_whitespace() -> None:
    assert canonical_json({"b": 1, "a": [1, {"d": None, "c": True}]}) == (
        b'{"a":[1,{"c":true,"d":null}],"b":1}'
    )


def test_keyword_order_does_not_change_the_key() -> None:
    assert make_key("p", SPEC, {"a": 1, "b": 2}) == make_key("p", SPEC, {"b": 2, "a": 1})


class Color(enum.StrEnum):
    RED = "red"


class Query(BaseModel):
    category: str | None = None
    min_price: Decimal | None = None
    since: datetime | None = None


def test_rich_values_are_keyed_by_their_json_form() -> None:
    when = datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert canonical_json(
        {
            "d": Decimal("1.50"),
            "t": when,
            "day": date(2024, 1, 2),
            "u": UUID(int=1),
            "e": Color.RED,
            "s": {"b", "a"},
            "m": Query(category="x", min_price=Decimal("2")),
        }
    ) == (
        b'{"d":"1.50","day":"2024-01-02","e":"red",'
        b'"m":{"category":"x","min_price":"2","since":null},'
        b'"s":["a","b"],"t":"2024-01-02T03:04:05Z","u":"00000000-0000-0000-0000-000000000001"}'
    )


def test_a_pydantic_model_and_its_json_dump_are_the_same_input() -> None:
    model = Query(category="books", since=datetime(2024, 1, 1, tzinfo=UTC))
    assert make_key("p", SPEC, {"f": model}) == make_key(
        "p", SPEC, {"f": model.model_dump(mode="json")}
    )


def test_objects_without_a_json_form_are_refused() -> None:
    session = AsyncSession(bind=create_async_engine("sqlite+aiosqlite://"))
    with pytest.raises(TypeError, match="AsyncSession cannot be part of a cache key"):
        make_key("p", SPEC, {"db": session})
    with pytest.raises(TypeError, match="str keys"):
        canonical_json({1: "a"})
    with pytest.raises(TypeError, match="NaN"):
        canonical_json({"x": float("nan")})


def test_namespace_version_and_principal_separate_entries() -> None:
    parts = {"limit": 10}
    keys = {
        make_key("p", SPEC, parts),
        make_key("p", CacheSpec("items.other", ttl=60), parts),
        make_key("p", CacheSpec("items.list", ttl=60, version=2), parts),
        make_key("p", SPEC, parts, principal=1),
        make_key("p", SPEC, parts, principal=2),
        make_key("q", SPEC, parts),
    }
    assert len(keys) == 6


def test_a_per_principal_namespace_refuses_a_key_without_the_principal() -> None:
    profile = CacheSpec("users.profile", ttl=60, per_principal=True)
    with pytest.raises(ValueError, match="per principal"):
        make_key("p", profile, {})
    make_key("p", profile, {}, principal=7)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"namespace": "Items:List", "ttl": 1}, "namespace"),
        ({"namespace": "items", "ttl": 0}, "ttl"),
        ({"namespace": "items", "ttl": 1, "version": 0}, "version"),
        ({"namespace": "items", "ttl": 1, "memory_ttl": 2}, "memory_ttl"),
    ],
)
def test_cache_spec_refuses_bad_policies(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        CacheSpec(**kwargs)


@given(a=parts_strategy, b=parts_strategy)
def test_different_inputs_never_share_a_key(a: dict[str, Any], b: dict[str, Any]) -> None:
    assume(a != b)
    assert make_key("p", SPEC, a) != make_key("p", SPEC, b)


@given(a=parts_strategy, principal_a=json_values, principal_b=json_values)
def test_different_principals_never_share_a_key(
    a: dict[str, Any], principal_a: Any, principal_b: Any
) -> None:
    assume(principal_a != principal_b)
    assert make_key("p", SPEC, a, principal=principal_a) != make_key(
        "p", SPEC, a, principal=principal_b
    )


# --- the guide's key scheme, reproduced to show what goes wrong ---------------------------------


def guide_key(func: Any, *args: Any, **kwargs: Any) -> str:
    """The key the guide's `cache_response` decorator builds."""
    return f"{func.__name__}:{args!s}:{kwargs!s}"


def _endpoint(name: str) -> Any:
    async def get(item_id: int) -> dict[str, Any]:
        return {"from": name, "id": item_id}

    return get


def test_guide_erratum_the_session_argument_makes_every_key_unique() -> None:
    engine = create_async_engine("sqlite+aiosqlite://")
    request_1, request_2 = AsyncSession(bind=engine), AsyncSession(bind=engine)
    func = _endpoint("items")
    # Same inputs, two requests: the guide's keys differ (the session's repr has its address),
    # so the cache never hits.
    assert guide_key(func, request_1, 5) != guide_key(func, request_2, 5)
    # Ours keys on the inputs that change the answer, never on the session.
    assert make_key("p", SPEC, {"item_id": 5}) == make_key("p", SPEC, {"item_id": 5})


def test_guide_erratum_two_endpoints_with_the_same_name_share_entries() -> None:
    users_get, items_get = _endpoint("users"), _endpoint("items")
    assert guide_key(users_get, 5) == guide_key(items_get, 5)  # a user served an item
    users = CacheSpec("users.detail", ttl=60)
    items = CacheSpec("items.detail", ttl=60)
    assert make_key("p", users, {"id": 5}) != make_key("p", items, {"id": 5})


def test_guide_erratum_keyword_order_and_hidden_fields_vary_or_collide() -> None:
    func = _endpoint("items")
    assert guide_key(func, a=1, b=2) != guide_key(func, b=2, a=1)

    class Filter(BaseModel):
        category: str
        owner_id: int

        def __repr__(self) -> str:  # a repr that leaves a field out, as many do
            return f"Filter(category={self.category!r})"

    mine, theirs = Filter(category="a", owner_id=1), Filter(category="a", owner_id=2)
    assert guide_key(func, mine) == guide_key(func, theirs)
    assert make_key("p", SPEC, {"f": mine}) != make_key("p", SPEC, {"f": theirs})
