"""JSON bodies written by pydantic in one pass (guide: "Response Models").

An endpoint that returns a model or an ORM object with a `response_model` has FastAPI dump it to
a dict, validate that dict against the response model again, serialise it to JSON-able Python and
then `json.dumps` it: four passes over every field, the largest cost of a 100-item page after the
query (docs/performance.md). These helpers validate once (ORM rows read by attribute) and let
pydantic-core write the bytes. The route keeps its `response_model`, so the OpenAPI schema is the
same; the body is what FastAPI would have sent (compact JSON, field aliases, UTF-8).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from pydantic import BaseModel, TypeAdapter
from starlette.responses import Response

__all__ = ["JSON_MEDIA_TYPE", "json_body", "model_response", "orm_response"]

JSON_MEDIA_TYPE = "application/json"


@lru_cache(maxsize=256)
def _adapter(schema: Any) -> TypeAdapter[Any]:
    return TypeAdapter(schema)


def json_body(body: bytes, status_code: int = 200) -> Response:
    """A response for JSON bytes already written (a cached answer, a constant)."""
    return Response(body, status_code=status_code, media_type=JSON_MEDIA_TYPE)


def model_response(value: BaseModel, status_code: int = 200) -> Response:
    """A model already validated (a `Page` of items, say), written as it is."""
    return json_body(value.model_dump_json(by_alias=True).encode(), status_code)


def orm_response(schema: Any, obj: Any, status_code: int = 200) -> Response:
    """`obj` (an ORM row, or rows for `list[Schema]`) validated into `schema` by attribute, and
    written."""
    adapter = _adapter(schema)
    value = adapter.validate_python(obj, from_attributes=True)
    return json_body(adapter.dump_json(value, by_alias=True), status_code)
