"""Input types that cannot reach the database as a 500 (guide: "Type Safety").

PostgreSQL rejects NUL characters in text and integers beyond the column's range; both surface as
driver errors, i.e. 500s, unless the schema refuses them first with a 422. Use them as
`Annotated[str, StringConstraints(max_length=200), NoNul]` and `IdPath`/`DbId`.

Numbers and flags in JSON bodies are strict (pydantic's `StrictInt`/`StrictBool`, or `DbId`):
lax coercion would store `{"quantity": false}` as 0, accepting input the OpenAPI schema forbids.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import Path
from pydantic import AfterValidator, Field, Strict
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from patterns.errors import error_response

INT32_MAX = 2_147_483_647


def _reject_nul(value: str) -> str:
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


NoNul = AfterValidator(_reject_nul)
"""Refuse NUL characters (PostgreSQL text cannot store them)."""

DbId = Annotated[int, Strict(), Field(ge=1, le=INT32_MAX)]
"""An integer primary key in a JSON body: a JSON integer only, as the schema says (`true`, `1.0`
and `"1"` are refused, not coerced). Query and path values arrive as text: use `IdPath` there."""

IdPath = Annotated[int, Path(ge=1, le=INT32_MAX)]


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


"""An integer primary key in a path: out-of-range ids are a 422, not a driver error."""


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
