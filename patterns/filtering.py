"""Typed filter parameters turned into WHERE clauses (guide: "Filtering").

A filter is a pydantic model whose fields are the query parameters a client may send, each
annotated with the *declared* column and operator it filters on. Clients can only fill in
values; they never name columns, so `?hashed_password=...` style probing has nothing to reach.

    class ItemFilter(FilterSet):
        category: Annotated[str | None, eq(Item.category)] = None
        min_price: Annotated[Decimal | None, gte(Item.price), Field(ge=0)] = None
        max_price: Annotated[Decimal | None, lte(Item.price), Field(ge=0)] = None
        q: Annotated[str | None, icontains(Item.title), Field(min_length=1, max_length=100)] = None

    @router.get("/items")
    async def list_items(filters: Annotated[ItemFilter, Query()]) -> ...:
        stmt = filters.apply(select(Item))

Differences from the guide: a lower bound above its upper bound (`min_price > max_price`) is a
422, not an empty page; text search escapes LIKE wildcards (`%`, `_`) in the user's input; and
every value is checked against its column before it reaches SQL (string length, integer range,
NUL characters, timezone-awareness), so no query string can turn into a 500 from the database.
The same column checks decode keyset cursors (`patterns.pagination`) and `CRUDBase` filters.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from types import MappingProxyType
from typing import Any, ClassVar, TypeVar

from pydantic import BaseModel, ConfigDict, TypeAdapter, ValidationError, model_validator
from sqlalchemy import BigInteger, ColumnElement, Integer, Select, SmallInteger, String, types
from sqlalchemy.orm import QueryableAttribute

from patterns.errors import ValidationFailedError

__all__ = [
    "Condition",
    "FilterSet",
    "Op",
    "check_column_value",
    "coerce_column_value",
    "eq",
    "gt",
    "gte",
    "icontains",
    "lt",
    "lte",
    "mapping_clauses",
    "one_of",
]

StmtT = TypeVar("StmtT", bound=Select[Any])

# Beyond these a Decimal is no price or quantity anyone means, and asyncpg/PostgreSQL would
# refuse to encode it (a 500), so it is refused as input instead.
_MAX_DECIMAL_DIGITS = 1000
_MAX_UNBOUNDED_TEXT = 10_000
_INT_RANGES: tuple[tuple[type[types.TypeEngine[Any]], int], ...] = (
    (BigInteger, 63),
    (SmallInteger, 15),
)


class Op(enum.Enum):
    """What a condition does with its value."""

    EQ = "eq"
    GT = "gt"
    GTE = "gte"
    LT = "lt"
    LTE = "lte"
    ICONTAINS = "icontains"
    ONE_OF = "one_of"


@dataclass(frozen=True)
class Condition:
    """A declared column and operator; the client supplies only the value."""

    column: QueryableAttribute[Any]
    op: Op

    def clause(self, value: Any) -> ColumnElement[bool]:
        col = self.column
        expr: ColumnElement[bool]
        match self.op:
            case Op.EQ:
                expr = col == value
            case Op.GT:
                expr = col > value
            case Op.GTE:
                expr = col >= value
            case Op.LT:
                expr = col < value
            case Op.LTE:
                expr = col <= value
            case Op.ICONTAINS:
                # autoescape escapes %, _ and the escape character itself in the bound value,
                # so a search for "50%" matches "50%" and not "500".
                expr = col.icontains(value, autoescape=True)
            case Op.ONE_OF:
                expr = col.in_(list(value))
        return expr

    @property
    def is_lower_bound(self) -> bool:
        return self.op in (Op.GT, Op.GTE)

    @property
    def is_upper_bound(self) -> bool:
        return self.op in (Op.LT, Op.LTE)


def _declare(op: Op) -> Callable[[QueryableAttribute[Any]], Condition]:
    """The helper that declares `op` on a column: `eq(Item.category)` is
    `Condition(Item.category, Op.EQ)`."""

    def declare(column: QueryableAttribute[Any]) -> Condition:
        return Condition(column, op)

    declare.__name__ = declare.__qualname__ = op.value
    return declare


eq = _declare(Op.EQ)
"""`column = value`."""
gt = _declare(Op.GT)
"""`column > value`."""
gte = _declare(Op.GTE)
"""`column >= value` (a range's lower bound)."""
lt = _declare(Op.LT)
"""`column < value`."""
lte = _declare(Op.LTE)
"""`column <= value` (a range's upper bound)."""
icontains = _declare(Op.ICONTAINS)
"""Case-insensitive substring match, with LIKE wildcards in the value escaped."""
one_of = _declare(Op.ONE_OF)
"""`column IN (values)`; declare the field as a bounded list (`max_length=`)."""


# --- values checked against their column ---------------------------------------------------


def _column_type(column: QueryableAttribute[Any] | ColumnElement[Any]) -> types.TypeEngine[Any]:
    sql_type: types.TypeEngine[Any] = column.type
    while isinstance(sql_type, types.TypeDecorator):
        sql_type = sql_type.impl_instance
    return sql_type


def _python_type(sql_type: types.TypeEngine[Any]) -> type[Any] | None:
    try:
        python_type: type[Any] = sql_type.python_type
    except NotImplementedError:
        return None
    return None if python_type is object else python_type


def check_column_value(column: QueryableAttribute[Any] | ColumnElement[Any], value: Any) -> None:
    """Raise ValueError when `value` cannot be sent to the database for `column`.

    These are the inputs that otherwise pass validation and fail inside PostgreSQL or the
    driver (a 500): NUL characters, strings longer than the column, integers outside the
    column's range, absurd Decimals, naive datetimes for a timezone-aware column.
    """
    if isinstance(value, list | tuple | set | frozenset):
        for item in value:
            check_column_value(column, item)
        return
    sql_type = _column_type(column)
    if isinstance(value, str):
        if "\x00" in value:
            raise ValueError("must not contain NUL characters")
        length = getattr(sql_type, "length", None) if isinstance(sql_type, String) else None
        limit = length or _MAX_UNBOUNDED_TEXT
        if len(value) > limit:
            raise ValueError(f"must be at most {limit} characters")
    elif isinstance(value, bool):
        return
    elif isinstance(value, int):
        if isinstance(sql_type, Integer):
            bits = next((b for t, b in _INT_RANGES if isinstance(sql_type, t)), 31)
            if not -(2**bits) <= value < 2**bits:
                raise ValueError("is out of range")
        elif len(str(abs(value))) > _MAX_DECIMAL_DIGITS:
            raise ValueError("is out of range")
    elif isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError("must be a finite number")
        digits = len(value.as_tuple().digits)
        if digits > _MAX_DECIMAL_DIGITS or abs(value.adjusted()) > _MAX_DECIMAL_DIGITS:
            raise ValueError("is out of range")
        if isinstance(sql_type, types.Numeric) and sql_type.precision is not None:
            # NUMERIC(p, s) rounds to s places (half away from zero), then needs the result
            # below 10^(p-s): a computed amount (a total) can pass every input check and fail.
            scale = sql_type.scale or 0
            limit = Decimal(10) ** (sql_type.precision - scale)
            if abs(value) >= limit - Decimal(5).scaleb(-(scale + 1)):
                raise ValueError(f"must be less than {limit}")
    elif isinstance(value, datetime):
        aware = value.tzinfo is not None and value.utcoffset() is not None
        if getattr(sql_type, "timezone", False) and not aware:
            raise ValueError("must include a timezone")


_ADAPTERS: dict[type[Any], TypeAdapter[Any]] = {}


def coerce_column_value(column: QueryableAttribute[Any] | ColumnElement[Any], raw: Any) -> Any:
    """Parse a JSON-ish value (from a cursor, a mapping of filters) into the column's Python type,
    then check it fits the column. Raises ValueError when it does not."""
    python_type = _python_type(_column_type(column))
    value = raw
    if python_type is not None:
        adapter = _ADAPTERS.get(python_type)
        if adapter is None:
            adapter = _ADAPTERS[python_type] = TypeAdapter(python_type)
        try:
            value = adapter.validate_python(raw)
        except ValidationError as exc:
            raise ValueError(exc.errors()[0]["msg"]) from None
    check_column_value(column, value)
    return value


# --- the filter model ------------------------------------------------------------------------


class FilterSet(BaseModel):
    """Base of a typed filter: every field is tied to exactly one Condition.

    Tie them in the field's annotation (`Annotated[str | None, eq(Item.category)]`), or, when
    conditions are shared or built elsewhere, in an explicit class-level
    `conditions: ClassVar[Mapping[str, Condition]]` covering every field; not both.

    Use it as `Annotated[MyFilter, Query()]`: FastAPI validates the query string into the model
    and a violated rule (a range upside down, a value that does not fit its column) becomes a
    422 in the error envelope.
    """

    # Unknown query parameters are ignored, not refused: FastAPI hands a query model every
    # parameter of the request, including the pagination ones declared beside it.
    model_config = ConfigDict(frozen=True)

    conditions: ClassVar[Mapping[str, Condition]] = MappingProxyType({})
    """Field name → Condition (collected from the annotations unless declared explicitly)."""

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        explicit = cls.__dict__.get("conditions")
        annotated = {
            name: [m for m in info.metadata if isinstance(m, Condition)]
            for name, info in cls.model_fields.items()
        }
        # A field with no condition would be accepted and silently ignored, a condition with no
        # field never applies: programming errors, caught when the class is defined.
        if explicit is not None:
            if any(annotated.values()):
                raise TypeError(
                    f"{cls.__name__}: declare conditions in annotations or in "
                    "`conditions`, not both"
                )
            missing = sorted(set(cls.model_fields) - set(explicit))
            extra = sorted(set(explicit) - set(cls.model_fields))
            if missing or extra:
                raise TypeError(
                    f"{cls.__name__}: fields without a condition {missing}, "
                    f"conditions without a field {extra}"
                )
            cls.conditions = MappingProxyType(dict(explicit))
            return
        for name, found in annotated.items():
            if len(found) != 1:
                raise TypeError(
                    f"{cls.__name__}.{name} needs exactly one condition, "
                    f"e.g. Annotated[str | None, eq(Model.column)]"
                )
        cls.conditions = MappingProxyType({name: found[0] for name, found in annotated.items()})

    @model_validator(mode="after")
    def _values_fit_their_columns(self) -> FilterSet:
        for name, condition in self.conditions.items():
            value = getattr(self, name)
            if value is None:
                continue
            try:
                check_column_value(condition.column, value)
            except ValueError as exc:
                raise ValueError(f"{name} {exc}") from None
        for low_name, high_name in self._bound_pairs():
            low, high = getattr(self, low_name), getattr(self, high_name)
            if low is not None and high is not None and low > high:
                raise ValueError(f"{low_name} must not be greater than {high_name}")
        return self

    @classmethod
    def _bound_pairs(cls) -> list[tuple[str, str]]:
        """(lower, upper) field pairs declared on the same column."""
        pairs = []
        for low_name, low in cls.conditions.items():
            if not low.is_lower_bound:
                continue
            for high_name, high in cls.conditions.items():
                if high.is_upper_bound and high.column is low.column:
                    pairs.append((low_name, high_name))
        return pairs

    def clauses(self) -> list[ColumnElement[bool]]:
        """One WHERE clause per filter the client set (None and empty lists are "not set")."""
        out: list[ColumnElement[bool]] = []
        for name, condition in self.conditions.items():
            value = getattr(self, name)
            if value is None or (condition.op is Op.ONE_OF and not value):
                continue
            out.append(condition.clause(value))
        return out

    def apply(self, stmt: StmtT) -> StmtT:
        """`stmt` with this filter's WHERE clauses added."""
        clauses = self.clauses()
        return stmt.where(*clauses) if clauses else stmt


def mapping_clauses(
    allowed: Mapping[str, QueryableAttribute[Any]],
    filters: Mapping[str, Any],
    *,
    loc: Sequence[str] = ("query",),
) -> list[ColumnElement[bool]]:
    """Equality clauses for `{name: value}` where each name must be one of `allowed`'s keys.

    Unknown names and values that do not fit their column raise ValidationFailedError (422),
    listing every problem, so a client-provided mapping can never name an arbitrary attribute.
    """
    details: list[dict[str, Any]] = []
    out: list[ColumnElement[bool]] = []
    for name, raw in filters.items():
        column = allowed.get(name)
        if column is None:
            details.append(
                {
                    "loc": [*loc, name],
                    "msg": f"unknown filter; allowed: {', '.join(sorted(allowed))}",
                    "type": "unknown_filter",
                }
            )
            continue
        if raw is None:
            continue
        try:
            value = coerce_column_value(column, raw)
        except ValueError as exc:
            details.append({"loc": [*loc, name], "msg": str(exc), "type": "value_error"})
            continue
        out.append(column == value)
    if details:
        raise ValidationFailedError("The filters are not valid.", details=details)
    return out
