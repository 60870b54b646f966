"""Typed filters: declared columns only, SQL they generate, and every bad value a 422."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any, ClassVar

import httpx
import pytest
from fastapi import FastAPI, Query
from pydantic import Field, ValidationError
from sqlalchemy import BigInteger, Boolean, select
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from patterns.errors import ValidationFailedError, install_error_handlers
from patterns.filtering import (
    Condition,
    FilterSet,
    check_column_value,
    coerce_column_value,
    eq,
    gt,
    gte,
    icontains,
    lt,
    lte,
    mapping_clauses,
    one_of,
)
from patterns.pagination import PageParamsDep
from tests.scratch_table import PG, CatalogueColumns, sql


class Base(DeclarativeBase):
    pass


class Product(CatalogueColumns, Base):
    __tablename__ = "products"

    stock: Mapped[int] = mapped_column(BigInteger)
    featured: Mapped[bool] = mapped_column(Boolean)


class ProductFilter(FilterSet):
    category: Annotated[str | None, eq(Product.category)] = None
    min_price: Annotated[Decimal | None, gte(Product.price), Field(ge=0)] = None
    max_price: Annotated[Decimal | None, lte(Product.price), Field(ge=0)] = None
    q: Annotated[str | None, icontains(Product.title), Field(min_length=1, max_length=40)] = None


def test_no_filter_set_adds_no_where_clause() -> None:
    stmt = ProductFilter().apply(select(Product.id))
    assert "WHERE" not in sql(stmt)


def test_each_set_filter_becomes_its_declared_clause() -> None:
    filters = ProductFilter(category="books", min_price=Decimal("1"), max_price=Decimal("9.99"))
    where = sql(filters.apply(select(Product.id))).split("WHERE ", 1)[1]
    assert where == "products.category = ? AND products.price >= ? AND products.price <= ?"


def test_text_search_is_case_insensitive_and_escapes_like_wildcards() -> None:
    clause = ProductFilter(q="50%_off\\").clauses()[0]
    compiled = clause.compile(dialect=PG)
    assert "ILIKE" in str(compiled)
    assert "ESCAPE '/'" in str(compiled)
    # Every wildcard the user typed is escaped, so it matches itself only.
    assert "50/%/_off\\" in compiled.params.values()


def test_other_operators_render_as_declared() -> None:
    class StockFilter(FilterSet):
        above: Annotated[int | None, gt(Product.stock)] = None
        below: Annotated[int | None, lt(Product.stock)] = None
        categories: Annotated[list[str] | None, one_of(Product.category), Field(max_length=5)] = (
            None
        )

    where = sql(StockFilter(above=1, below=9, categories=["a", "b"]).apply(select(Product.id)))
    assert where.endswith(
        "WHERE products.stock > ? AND products.stock < ? "
        "AND products.category IN (__[POSTCOMPILE_category_1])"
    )
    assert "WHERE" not in sql(StockFilter(categories=[]).apply(select(Product.id)))


def test_a_field_without_a_condition_is_refused_at_class_creation() -> None:
    with pytest.raises(TypeError, match=r"Leaky.owner_password needs exactly one condition"):

        class Leaky(FilterSet):
            category: Annotated[str | None, eq(Product.category)] = None
            owner_password: str | None = None


def test_a_field_with_two_conditions_is_refused_at_class_creation() -> None:
    with pytest.raises(TypeError, match=r"Twice.q needs exactly one condition"):

        class Twice(FilterSet):
            q: Annotated[str | None, eq(Product.title), icontains(Product.title)] = None


def test_conditions_may_be_declared_as_an_explicit_mapping_covering_every_field() -> None:
    class Explicit(FilterSet):
        conditions: ClassVar[Mapping[str, Condition]] = {"category": eq(Product.category)}
        category: str | None = None

    assert sql(Explicit(category="a").apply(select(Product.id))).endswith(
        "WHERE products.category = ?"
    )
    with pytest.raises(TypeError, match=r"fields without a condition \['q'\]"):

        class Partial(FilterSet):
            conditions: ClassVar[Mapping[str, Condition]] = {"category": eq(Product.category)}
            category: str | None = None
            q: str | None = None

    with pytest.raises(TypeError, match="not both"):

        class Both(FilterSet):
            conditions: ClassVar[Mapping[str, Condition]] = {"category": eq(Product.category)}
            category: Annotated[str | None, eq(Product.category)] = None


def test_conditions_are_collected_from_the_annotations() -> None:
    assert list(ProductFilter.conditions) == ["category", "min_price", "max_price", "q"]
    assert ProductFilter.conditions["min_price"] == gte(Product.price)


def test_min_above_max_is_a_validation_error() -> None:
    with pytest.raises(ValidationError, match="min_price must not be greater than max_price"):
        ProductFilter(min_price=Decimal("10"), max_price=Decimal("9.99"))
    ProductFilter(min_price=Decimal("10"), max_price=Decimal("10"))  # equal bounds are fine


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"category": "x" * 21}, "category must be at most 20 characters"),
        ({"category": "a\x00b"}, "category must not contain NUL characters"),
        ({"min_price": Decimal("1e5000")}, "min_price is out of range"),
    ],
)
def test_values_that_do_not_fit_their_column_are_validation_errors(
    kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValidationError, match=message):
        ProductFilter(**kwargs)


def test_column_checks_cover_integer_ranges_and_timezones() -> None:
    check_column_value(Product.id, 2**31 - 1)
    with pytest.raises(ValueError, match="out of range"):
        check_column_value(Product.id, 2**31)
    check_column_value(Product.stock, 2**40)  # BigInteger
    check_column_value(Product.price, 2**40)  # an int for a Numeric column: no int32 bound
    with pytest.raises(ValueError, match="out of range"):
        check_column_value(Product.stock, 2**63)
    with pytest.raises(ValueError, match="timezone"):
        check_column_value(Product.created_at, datetime(2024, 1, 1))
    check_column_value(Product.created_at, datetime(2024, 1, 1, tzinfo=UTC))
    with pytest.raises(ValueError, match="finite"):
        check_column_value(Product.price, Decimal("Infinity"))


@pytest.mark.parametrize(
    ("value", "fits"),
    [
        ("99999999.99", True),  # the largest NUMERIC(10, 2)
        ("99999999.994", True),  # rounds down to it
        ("99999999.995", False),  # rounds up to 10^8: PostgreSQL's "numeric field overflow"
        ("100000000", False),
        ("-99999999.995", False),
        ("0.001", True),  # rounds to 0.00: fine
    ],
)
def test_decimals_must_fit_the_numeric_columns_precision(value: str, fits: bool) -> None:
    if fits:
        check_column_value(Product.price, Decimal(value))
    else:
        with pytest.raises(ValueError, match="less than 100000000"):
            check_column_value(Product.price, Decimal(value))


def test_coerce_parses_json_values_into_the_column_type() -> None:
    assert coerce_column_value(Product.price, "1.50") == Decimal("1.50")
    assert coerce_column_value(Product.featured, True) is True
    assert coerce_column_value(Product.created_at, "2024-01-01T00:00:00Z") == datetime(
        2024, 1, 1, tzinfo=UTC
    )
    with pytest.raises(ValueError, match="integer"):
        coerce_column_value(Product.id, "seven")


def test_mapping_filters_accept_only_declared_names() -> None:
    allowed = {"category": Product.category, "featured": Product.featured}
    (clause,) = mapping_clauses(allowed, {"category": "books"})
    assert sql(clause) == "products.category = ?"
    with pytest.raises(ValidationFailedError) as info:
        mapping_clauses(allowed, {"title": "x", "featured": "perhaps", "category": "ok"})
    assert [d["loc"] for d in info.value.details or []] == [
        ["query", "title"],
        ["query", "featured"],
    ]


# --- through FastAPI: a query model, and errors in the envelope ------------------------------


def _app() -> FastAPI:
    app = FastAPI()
    install_error_handlers(app)

    @app.get("/products")
    async def products(
        filters: Annotated[ProductFilter, Query()], page: PageParamsDep
    ) -> dict[str, Any]:
        return {"filters": filters.model_dump(mode="json", exclude_none=True), "skip": page.skip}

    return app


async def _get(query: str) -> httpx.Response:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=_app()), base_url="http://test"
    ) as client:
        return await client.get(f"/products?{query}")


async def test_filters_and_pagination_read_from_one_query_string() -> None:
    response = await _get("category=books&min_price=2.5&skip=10&limit=5")
    assert response.status_code == 200
    assert response.json() == {"filters": {"category": "books", "min_price": "2.5"}, "skip": 10}


@pytest.mark.parametrize(
    "query",
    [
        "min_price=10&max_price=1",
        "min_price=-1",
        "min_price=cheap",
        "min_price=NaN",
        "category=" + "x" * 21,
        "category=a%00b",
        "q=",
    ],
)
async def test_bad_filters_are_a_422_in_the_envelope(query: str) -> None:
    response = await _get(query)
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert error["details"]
