"""Input types that cannot reach the database as a 500 (guide: "Type Safety").

PostgreSQL rejects NUL characters in text and integers beyond the column's range; both surface as
driver errors, i.e. 500s, unless the schema refuses them first with a 422. Use them as
`Annotated[str, StringConstraints(max_length=200), NoNul]` and `IdPath`/`DbId`.

Numbers and flags in JSON bodies are strict (pydantic's `StrictInt`/`StrictBool`, or `DbId`):
lax coercion would store `{"quantity": false}` as 0, accepting input the OpenAPI schema forbids.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Path
from pydantic import AfterValidator, Field, Strict

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
"""An integer primary key in a path: out-of-range ids are a 422, not a driver error."""
