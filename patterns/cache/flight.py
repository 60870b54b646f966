"""Single flight: in one process, concurrent callers for one key share one load (guide:
"Caching Pitfalls": "Cache Stampede")."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

__all__ = ["SingleFlight"]

V = TypeVar("V")


class SingleFlight:
    """The loads in progress in this process, by key.

    The first caller for a key leads (`lead`), the others `join` and get the bytes it stored.
    A joiner is not hurt when its leader's caller goes away: the cancelled load is led again by
    the first joiner to resume, and the others join that one.
    """

    def __init__(self) -> None:
        self._flights: dict[str, asyncio.Future[bytes]] = {}

    async def join(self, key: str, on_join: Callable[[], None]) -> bytes | None:
        """The bytes of the load in progress for `key`, or None when there is none to join
        (the caller leads)."""
        # A second round only when the joined load was cancelled.
        for _ in range(2):
            flight = self._flights.get(key)
            if flight is None:
                return None
            on_join()
            try:
                return await asyncio.shield(flight)
            except asyncio.CancelledError:
                if not flight.cancelled():
                    raise  # this caller was cancelled, not the load it joined
        return None

    async def lead(self, key: str, load: Callable[[], Awaitable[tuple[bytes, V]]]) -> V:
        """Run `load` (stored bytes, value for this caller) with joiners waiting on its bytes."""
        flight: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self._flights[key] = flight
        try:
            raw, value = await load()
        except BaseException as exc:
            if isinstance(exc, Exception):
                flight.set_exception(exc)
                flight.exception()  # mark it retrieved: there may be no joiners
            else:
                flight.cancel()
            raise
        else:
            flight.set_result(raw)
            return value
        finally:
            if self._flights.get(key) is flight:
                del self._flights[key]
