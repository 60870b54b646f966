"""Cache warming: compute answers ahead of traffic (guide: "Cache Warming")."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from patterns.cache.keys import CacheSpec

if TYPE_CHECKING:
    from patterns.cache.core import Cache

__all__ = ["WarmEntry", "WarmReport", "warm"]

logger = logging.getLogger("patterns.cache")


@dataclass(frozen=True)
class WarmEntry:
    """One answer to compute and store ahead of requests (`Cache.warm`)."""

    spec: CacheSpec
    compute: Callable[[], Awaitable[Any]]
    parts: Mapping[str, Any] | None = None
    principal: Any = None
    tags: Sequence[str] = ()
    model: Any = None


@dataclass(frozen=True)
class WarmReport:
    warmed: int
    failed: int


async def warm(cache: Cache, entries: Iterable[WarmEntry]) -> WarmReport:
    """Compute and store each entry now (overwriting), one after another so warming does not
    flood the database. A failing entry is logged and the others still run."""
    warmed = failed = 0
    for entry in entries:
        try:
            value = await entry.compute()
            stored = await cache.set(
                entry.spec,
                value,
                parts=entry.parts,
                principal=entry.principal,
                tags=entry.tags,
                model=entry.model,
            )
        except Exception:
            stored = False
            logger.exception("cache warm-up of %s failed", entry.spec.namespace)
        if stored:
            warmed += 1
        else:
            failed += 1
    return WarmReport(warmed=warmed, failed=failed)
