"""Exercise 8 — a cache key that includes every input and the user (guide: "Redis Caching").

`GET /me/orders?status=&page=` is cached in Redis under `cache_key(path, query, account_id)`.
Today the key is the path alone: the second user sees the first user's orders, and page 2 is
page 1 again. Build a key from everything the response depends on: the path, every query
parameter (in a canonical order, so `?a=1&b=2` and `?b=2&a=1` share an entry) and the account.
"""

from __future__ import annotations

from collections.abc import Sequence


def cache_key(path: str, query: Sequence[tuple[str, str]], account_id: int | None) -> str:
    return f"cache:{path}"
