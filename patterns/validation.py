"""Input types that cannot reach the database as a 500 (guide: "Type Safety").

PostgreSQL rejects NUL characters in text and integers beyond the column's range; both surface as
driver errors, i.e. 500s, unless the schema refuses them first with a 422. Use them as
`Annotated[str, StringConstraints(max_length=200), NoNul]` and `IdPath`/`DbId`.

Numbers and flags in JSON bodies take the JSON types their schema names (`WholeNumber`,
`DbId`, `StrictBool`): lax coercion would store `{"quantity": false}` as 0, accepting input the
OpenAPI schema forbids, while JSON Schema's `integer` is a value, so `3.0` is one and accepted.
Decimal amounts (`decimal_amount`) document the exact string form they accept.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Annotated, Any
from urllib.parse import parse_qsl

from fastapi import Path
from pydantic import (
    AfterValidator,
    BeforeValidator,
    Field,
    GetCoreSchemaHandler,
    GetJsonSchemaHandler,
    Strict,
    WithJsonSchema,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import core_schema
from starlette.convertors import Convertor, register_url_convertor
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from patterns.errors import error_response

INT32_MAX = 2_147_483_647


def _reject_nul(value: str) -> str:
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


NO_NUL_PATTERN = "^[^\\x00]*$"


class _NoNul:
    """Refuse NUL characters (PostgreSQL text cannot store them), and say so in the schema."""

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        return core_schema.no_info_after_validator_function(_reject_nul, handler(source))

    def __get_pydantic_json_schema__(
        self, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        json_schema = handler(schema)
        json_schema["pattern"] = NO_NUL_PATTERN
        return json_schema


NoNul = _NoNul()
"""Refuse NUL characters (PostgreSQL text cannot store them); documented as a `pattern`."""


def _whole_number(value: Any) -> Any:
    # A float with no fraction is the integer JSON Schema says it is; anything else goes on to
    # the strict check unchanged (true, "3" and 3.5 are refused there).
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


WholeNumber = BeforeValidator(_whole_number)
"""Put last in `Annotated[int, Strict(), Field(...), WholeNumber]` (after the bounds, so they
stay `minimum`/`maximum` in the schema): an integer in a JSON body as JSON Schema's `integer`
defines it, `3` and `3.0` (the same value), never `true`, `"3"` or `3.5`."""


DbId = Annotated[int, Strict(), Field(ge=1, le=INT32_MAX), WholeNumber]
"""An integer primary key in a JSON body (a `WholeNumber` in the column's range). Query and path
values arrive as text: use `IdPath` there."""

IdPath = Annotated[int, Path(ge=1, le=INT32_MAX)]
"""An integer primary key in a path: out-of-range ids are a 422, not a driver error. Declare the
segment as `{name:id}` (see `IdSegment`)."""


class IdSegment(Convertor[str]):
    """The `{name:id}` path segment: any segment that does not start with a letter.

    A plain `{item_id}` matches every segment, so `PATCH /items/featured` would run the
    `{item_id}` route (and its authentication) instead of being a 405 of `/items/featured`. This
    one never matches a sibling route's word, while a malformed number (`-1`, `1e3`, `0x10`) still
    reaches the route and gets a 422 that names the parameter (`IdPath` types it).
    """

    regex = "[^/A-Za-z][^/]*"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return str(value)


register_url_convertor("id", IdSegment())

_JSON_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")


def decimal_amount(*, digits: int, places: int, in_query: bool = False) -> tuple[Any, ...]:
    """Metadata for `Annotated[Decimal, *decimal_amount(digits=10, places=2)]`: a non-negative
    amount of at most `digits` digits, `places` of them after the point, as the schema says.

    In a JSON body it is a number (any JSON number in range, rounded half-even to `places`: a
    binary float was never exact) or a string in plain notation (`"9.99"`, exactly, matched by
    the documented pattern; `""`, `"1e2"` and `" 2"` are refused). In a query everything is
    text, so it is documented as a number and accepted in JSON number notation. The value is
    returned quantized (`2` → `2.00`), as a NUMERIC column will hold it.
    """
    whole = digits - places
    quantum = Decimal(1).scaleb(-places)
    maximum = Decimal(10**whole) - quantum
    pattern = rf"^[0-9]{{1,{whole}}}(\.[0-9]{{1,{places}}})?$"
    plain = re.compile(pattern)
    number: dict[str, Any] = {"type": "number", "minimum": 0, "maximum": float(maximum)}

    def check_form(value: Any) -> Any:
        if isinstance(value, bool):
            raise ValueError("must be a number or a decimal string")
        if isinstance(value, str):
            form = _JSON_NUMBER if in_query else plain
            if form.fullmatch(value) is None:
                expected = "a number" if in_query else f"a decimal string matching {pattern}"
                raise ValueError(f"must be {expected}")
        return value

    def quantize(value: Decimal) -> Decimal:
        # + 0 turns -0 into 0; the bounds were checked on the value as sent.
        return (value + 0).quantize(quantum, rounding=ROUND_HALF_EVEN)

    schema = number if in_query else {"anyOf": [number, {"type": "string", "pattern": pattern}]}
    return (
        Field(ge=0, le=maximum, allow_inf_nan=False),
        AfterValidator(quantize),
        BeforeValidator(check_form),
        WithJsonSchema(schema),
    )


def omittable_not_null(*fields: str) -> Callable[[dict[str, Any]], None]:
    """A model's `json_schema_extra` for a partial update: these fields (typed `X | None = None`
    so that "not sent" is None) are documented without `null`, because sending null for them is
    refused (the CRUD layer's "must not be null", a 422). The schema then says what the server
    accepts, and a schema-driven client or fuzzer does not send null expecting success."""

    def strip_null(schema: dict[str, Any]) -> None:
        for name in fields:
            prop = schema["properties"][name]
            kept = [s for s in prop.pop("anyOf", []) if s.get("type") != "null"]
            if len(kept) == 1:
                prop.update(kept[0])
            elif kept:
                prop["anyOf"] = kept

    return strip_null


class BodySizeLimitMiddleware:
    """Refuse request bodies over `max_bytes` with 413 in the error envelope, before they are
    read into memory: at once when `Content-Length` says so, else as soon as the streamed body
    passes the limit. (FastAPI's own `max_body_size` answers in plain text, outside the
    request-id middleware.)"""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", ()):
            if name == b"content-length" and value.isdigit() and int(value) > self.max_bytes:
                response = error_response(413, "payload_too_large", self._message())
                await response(scope, receive, send)
                return
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise HTTPException(status_code=413, detail=self._message())
            return message

        await self.app(scope, limited_receive, send)

    def _message(self) -> str:
        return f"The request body is larger than {self.max_bytes} bytes."


class SingleValuedQueryMiddleware:
    """Refuse a query string that repeats a parameter (`?q=a&q=b`) with a 422 in the envelope.

    The schema declares each query parameter as one value; FastAPI would quietly keep the last
    one, accepting a request the schema does not allow. Parameters that are lists take
    `repeatable` names.
    """

    def __init__(self, app: ASGIApp, repeatable: frozenset[str] = frozenset()) -> None:
        self.app = app
        self.repeatable = repeatable

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope.get("query_string"):
            query = scope["query_string"].decode("latin-1")
            names = [name for name, _ in parse_qsl(query, keep_blank_values=True)]
            repeated = sorted({n for n in names if names.count(n) > 1} - self.repeatable)
            if repeated:
                details = [
                    {"loc": ["query", name], "msg": "given more than once", "type": "repeated"}
                    for name in repeated
                ]
                message = "Each query parameter may be given once."
                response = error_response(422, "validation_error", message, details=details)
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)
