"""How a cached answer becomes bytes and back (guide: "Redis Caching": values are JSON).

With a model (a pydantic model, or a `TypeAdapter`/type such as `list[ItemOut]`), a computed
value is validated into it (ORM objects read by attribute) and stored as its JSON; a hit is
validated back into it. Without one, the value is stored with pydantic's JSON encoder and
handed out as parsed JSON, on a miss as on a hit. `AsJSON` hands out the stored bytes
themselves, ready for a response body.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from pydantic import TypeAdapter
from pydantic_core import to_json

__all__ = ["AsJSON", "Codec", "adapter_for", "as_bytes", "decode", "encode"]


@lru_cache(maxsize=256)
def adapter_for(model: Any) -> TypeAdapter[Any]:
    """A TypeAdapter for `model`, built once per type (building one compiles a validator)."""
    return model if isinstance(model, TypeAdapter) else TypeAdapter(model)


@dataclass(frozen=True)
class AsJSON:
    """Validate and serialise through `adapter`, and hand every caller the JSON bytes."""

    adapter: TypeAdapter[Any]


Codec = TypeAdapter[Any] | AsJSON | None


def encode(result: Any, codec: Codec) -> tuple[bytes, Any]:
    """(bytes to store, value for the caller) for a freshly computed `result`."""
    if isinstance(codec, AsJSON):
        raw = codec.adapter.dump_json(codec.adapter.validate_python(result, from_attributes=True))
        return raw, raw
    if codec is not None:
        value = codec.validate_python(result, from_attributes=True)
        return codec.dump_json(value), value
    raw = to_json(result)
    return raw, json.loads(raw)


def decode(raw: bytes, codec: Codec) -> Any:
    """The value for a caller from stored bytes."""
    if isinstance(codec, AsJSON):
        return raw
    return codec.validate_json(raw) if codec is not None else json.loads(raw)


def as_bytes(raw: bytes | str) -> bytes:
    """Redis answers bytes, or str from a client made with `decode_responses=True`."""
    return raw.encode() if isinstance(raw, str) else raw
