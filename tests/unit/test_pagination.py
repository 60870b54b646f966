"""Offset page arithmetic, the skip/limit and cursor dependencies, and keyset cursors."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any

import httpx
import pytest
from fastapi import Depends, FastAPI
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import Integer, Numeric, String, select
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from patterns.db import UTCDateTime
from patterns.errors import ValidationFailedError, install_error_handlers
from patterns.pagination import (
    MAX_SKIP,
    CursorParams,
    CursorParamsDep,
    Keyset,
    Page,
    PageParams,
    PageParamsDep,
    SortKey,
    page_numbers,
    page_params,
)
from tests.scratch_table import sql


class Base(DeclarativeBase):
    pass


class Thing(Base):
    __tablename__ = "things"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(10))
    price: Mapped[Decimal] = mapped_column(Numeric(10, 2))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    note: Mapped[str | None] = mapped_column(String(10), nullable=True)


# --- page arithmetic -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("total", "skip", "limit", "page", "pages"),
    [
        (0, 0, 10, 1, 0),  # empty: no pages at all
        (30, 0, 10, 1, 3),  # exact multiple, first page
        (30, 20, 10, 3, 3),  # exact multiple, last page
        (25, 20, 10, 3, 3),  # last partial page
        (1, 0, 10, 1, 1),
        (25, 5, 10, 1, 3),  # skip not a multiple: the page holding the first item
        (25, 15, 10, 2, 3),
        (25, 100, 10, 11, 3),  # past the end
        (10, 0, 1, 1, 10),
    ],
)
def test_page_numbers_at_the_edges(
    total: int, skip: int, limit: int, page: int, pages: int
) -> None:
    assert page_numbers(total, skip, limit) == (page, pages)


@given(total=st.integers(0, 10_000), skip=st.integers(0, 10_000), limit=st.integers(1, 100))
def test_pages_is_the_fewest_pages_that_hold_every_row(total: int, skip: int, limit: int) -> None:
    page, pages = page_numbers(total, skip, limit)
    assert (pages - 1) * limit < total <= pages * limit or (total == 0 and pages == 0)
    assert (page - 1) * limit <= skip < page * limit


def test_page_numbers_refuse_nonsense() -> None:
    with pytest.raises(ValueError, match="limit"):
        page_numbers(10, 0, 0)
    with pytest.raises(ValueError, match="skip"):
        page_numbers(10, -1, 10)


def test_page_create_fills_the_numbers_from_params() -> None:
    page = Page.create(["a", "b"], total=12, params=PageParams(skip=10, limit=5))
    assert page.model_dump() == {"items": ["a", "b"], "total": 12, "page": 3, "size": 5, "pages": 3}


def test_page_params_refuse_out_of_range_values_in_code() -> None:
    with pytest.raises(ValueError, match="skip"):
        PageParams(skip=-1)
    with pytest.raises(ValueError, match="limit"):
        PageParams(limit=0)
    with pytest.raises(ValueError, match="limit"):
        CursorParams(limit=0)
    with pytest.raises(ValueError, match="default_limit"):
        page_params(default_limit=200, max_limit=100)


# --- the FastAPI dependencies ----------------------------------------------------------------


SmallPageDep = Annotated[PageParams, Depends(page_params(default_limit=5, max_limit=10))]


def _app() -> FastAPI:
    app = FastAPI()
    install_error_handlers(app)

    @app.get("/offset")
    async def offset(params: PageParamsDep) -> dict[str, int]:
        return {"skip": params.skip, "limit": params.limit}

    @app.get("/small")
    async def small_page(params: SmallPageDep) -> dict[str, int]:
        return {"skip": params.skip, "limit": params.limit}

    keyset = Keyset(Thing.price, Thing.id)

    @app.get("/cursor")
    async def cursor(params: CursorParamsDep) -> dict[str, Any]:
        values = keyset.decode(params.cursor) if params.cursor else None
        return {"values": [str(v) for v in values] if values else None, "limit": params.limit}

    return app


async def _get(path: str) -> httpx.Response:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=_app()), base_url="http://test"
    ) as client:
        return await client.get(path)


async def test_offset_dependency_defaults_to_the_first_page() -> None:
    response = await _get("/offset")
    assert response.json() == {"skip": 0, "limit": 20}


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("skip=-1", "skip"),
        ("limit=-5", "limit"),
        ("limit=0", "limit"),
        ("limit=101", "limit"),
        (f"skip={MAX_SKIP + 1}", "skip"),
        ("skip=abc", "skip"),
    ],
)
async def test_offset_dependency_rejects_bad_values_with_a_422_envelope(
    query: str, field: str
) -> None:
    response = await _get(f"/offset?{query}")
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert error["details"][0]["loc"] == ["query", field]


async def test_a_page_params_factory_sets_its_own_default_and_cap() -> None:
    assert (await _get("/small")).json() == {"skip": 0, "limit": 5}
    assert (await _get("/small?limit=11")).status_code == 422


async def test_cursor_dependency_passes_a_valid_cursor_through() -> None:
    cursor = Keyset(Thing.price, Thing.id).encode([Decimal("9.50"), 7])
    response = await _get(f"/cursor?cursor={cursor}&limit=3")
    assert response.json() == {"values": ["9.50", "7"], "limit": 3}


async def test_a_malformed_cursor_is_a_422_in_the_envelope() -> None:
    response = await _get("/cursor?cursor=not-a-cursor")
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert error["details"] == [
        {"loc": ["query", "cursor"], "msg": "invalid cursor", "type": "invalid_cursor"}
    ]


async def test_an_oversized_cursor_is_refused_before_decoding() -> None:
    response = await _get("/cursor?cursor=" + "A" * 2000)
    assert response.status_code == 422
    assert response.json()["error"]["details"][0]["loc"] == ["query", "cursor"]


# --- keysets --------------------------------------------------------------------------------


def test_keyset_orders_by_its_columns_with_the_id_last() -> None:
    keyset = Keyset(SortKey(Thing.created_at, descending=True), SortKey(Thing.id, descending=True))
    stmt = select(Thing).order_by(*keyset.order_by())
    assert sql(stmt).endswith("ORDER BY things.created_at DESC, things.id DESC")


def test_one_direction_continues_with_a_row_value_comparison() -> None:
    keyset = Keyset(Thing.price, Thing.id)
    clause = sql(keyset.after([Decimal("1.00"), 5]))
    assert clause == "(things.price, things.id) > (?, ?)"
    descending = Keyset(SortKey(Thing.price, descending=True), SortKey(Thing.id, descending=True))
    assert " < " in sql(descending.after([Decimal("1.00"), 5]))


def test_mixed_directions_continue_with_an_or_of_prefixes() -> None:
    keyset = Keyset(Thing.name, SortKey(Thing.price, descending=True), Thing.id)
    clause = sql(keyset.after(["b", Decimal("2"), 3]))
    assert clause == (
        "things.name > ? "
        "OR things.name = ? AND things.price < ? "
        "OR things.name = ? AND things.price = ? AND things.id > ?"
    )


def test_keyset_refuses_nullable_columns_and_a_non_unique_tie_breaker() -> None:
    with pytest.raises(ValueError, match="NOT NULL"):
        Keyset(Thing.note, Thing.id)
    with pytest.raises(ValueError, match="unique"):
        Keyset(Thing.price)
    with pytest.raises(ValueError, match="at least one"):
        Keyset()


def test_cursor_round_trips_typed_values() -> None:
    keyset = Keyset(Thing.created_at, Thing.price, Thing.name, Thing.id)
    values = [datetime(2024, 5, 1, 12, 30, tzinfo=UTC), Decimal("10.25"), "zoë", 42]
    cursor = keyset.encode(values)
    assert not set(cursor) & set("=+/")  # URL-safe, unpadded
    assert keyset.decode(cursor) == values


def _cursor(payload: Any) -> str:
    raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


@pytest.mark.parametrize(
    "cursor",
    [
        "!!!",  # not base64
        "YQ",  # base64 of "a": not JSON
        _cursor(b"\xff\xfe"),  # not UTF-8
        _cursor({"price": 1}),  # not a list
        _cursor([1]),  # too few values
        _cursor([1, 2, 3]),  # too many
        _cursor(["cheap", 1]),  # not a number
        _cursor(["1.00", "x"]),  # not an id
        _cursor(["1.00", 2**31]),  # id out of the column's range
        _cursor(["NaN", 1]),
        _cursor(["1e100000", 1]),
    ],
)
def test_malformed_cursors_raise_validation_failed(cursor: str) -> None:
    with pytest.raises(ValidationFailedError) as info:
        Keyset(Thing.price, Thing.id).decode(cursor)
    assert info.value.status_code == 422


@pytest.mark.parametrize(
    ("keyset", "values"),
    [
        (Keyset(Thing.name, Thing.id), ["a\x00b", 1]),  # PostgreSQL rejects NUL in text
        (Keyset(Thing.name, Thing.id), ["x" * 11, 1]),  # longer than the column
        (Keyset(Thing.created_at, Thing.id), ["2024-01-01T00:00:00", 1]),  # naive for timestamptz
    ],
)
def test_cursor_values_that_would_fail_in_the_database_are_refused(
    keyset: Keyset, values: list[Any]
) -> None:
    with pytest.raises(ValidationFailedError):
        keyset.decode(_cursor(values))
