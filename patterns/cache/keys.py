"""Cache keys from a namespace, a version and every input that changes the answer (guide:
"Redis Caching", "Caching Pitfalls": "Cache Key Collisions").

The guide keys on ``f"{func.__name__}:{str(args)}:{str(kwargs)}"``. That collides across
functions that share a name (two routers' `get`), depends on keyword order and on `repr`s
(a repr that hides a field makes two inputs share an entry), and includes the request's
database session, whose repr carries a memory address, so the key differs on every call and the
cache never hits. Here a key is ``{prefix}:{namespace}:v{version}:{sha256}`` where the hash is
over canonical JSON of the declared inputs: sorted keys, no whitespace, pydantic models dumped
with ``mode="json"``, sets sorted. An object that has no JSON form (a session, a request) is
refused with TypeError instead of being stringified.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel
from pydantic_core import PydanticSerializationError, to_jsonable_python

__all__ = ["CacheSpec", "canonical_json", "make_key"]

_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]*$")


@dataclass(frozen=True)
class CacheSpec:
    """One cached answer's policy: where it lives, how long, and whose it is.

    `namespace` names the answer ("items.featured"); bump `version` when its shape changes so
    old entries are never read as the new shape. `per_principal=True` makes the principal a
    required part of every key (per-user data can then not be cached without it).
    `memory_ttl` opts into the in-process tier: entries stay in this process's memory for at most
    that many seconds after an invalidation elsewhere (see `patterns.cache`).
    `lock=False` skips the cross-process recomputation lock (three more Redis round trips per
    miss) for answers that few callers ask for at once, such as one user's own data: two
    processes may then both compute after a miss. Callers in one process still share one
    computation.
    """

    namespace: str
    ttl: float
    version: int = 1
    per_principal: bool = False
    memory_ttl: float | None = None
    lock: bool = True

    def __post_init__(self) -> None:
        if not _NAME.match(self.namespace):
            raise ValueError(f"namespace {self.namespace!r} must match {_NAME.pattern}")
        if self.ttl <= 0 or self.version < 1:
            raise ValueError("ttl must be > 0 and version >= 1")
        if self.memory_ttl is not None and not 0 < self.memory_ttl <= self.ttl:
            raise ValueError("memory_ttl must be in (0, ttl]")

    @property
    def ttl_ms(self) -> int:
        return max(1, math.ceil(self.ttl * 1000))


def _normalise(value: Any) -> Any:
    if value is None or isinstance(value, str | bool | int):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise TypeError("NaN and infinities cannot be part of a cache key")
        return value
    if isinstance(value, BaseModel):
        return _normalise(value.model_dump(mode="json"))
    if isinstance(value, Mapping):
        out = {}
        for k, v in value.items():
            if not isinstance(k, str):
                # {1: x} and {"1": x} would otherwise be the same JSON object.
                raise TypeError(f"cache key mappings need str keys, got {type(k).__name__}")
            out[k] = _normalise(v)
        return out
    if isinstance(value, set | frozenset):
        items = [_normalise(v) for v in value]
        return sorted(items, key=lambda v: json.dumps(v, sort_keys=True, separators=(",", ":")))
    if isinstance(value, list | tuple):
        return [_normalise(v) for v in value]
    try:
        # datetimes, dates, Decimals, UUIDs, enums, dataclasses: their JSON form.
        jsonable = to_jsonable_python(value)
    except PydanticSerializationError:
        raise TypeError(
            f"{type(value).__name__} cannot be part of a cache key; pass the values that "
            "change the answer instead"
        ) from None
    return _normalise(jsonable)


def canonical_json(value: Any) -> bytes:
    """One byte string per input: sorted keys, no whitespace, ASCII only."""
    return json.dumps(
        _normalise(value), sort_keys=True, separators=(",", ":"), ensure_ascii=True
    ).encode()


def make_key(
    prefix: str,
    spec: CacheSpec,
    parts: Mapping[str, Any] | None = None,
    *,
    principal: Any = None,
) -> str:
    """`{prefix}:{namespace}:v{version}:{sha256 of canonical JSON of parts and principal}`."""
    if spec.per_principal and principal is None:
        raise ValueError(f"cache namespace {spec.namespace!r} is per principal: pass principal=")
    payload = canonical_json({"parts": dict(parts or {}), "principal": principal})
    digest = hashlib.sha256(payload).hexdigest()
    return f"{prefix}:{spec.namespace}:v{spec.version}:{digest}"
