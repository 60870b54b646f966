"""Exercise 8 — a cache key that includes every input and the user (guide: "Redis Caching").

Every input of the response is in the key: the path, the query parameters sorted (so their
order does not split the cache) and the account, as one unambiguous JSON value hashed to a
fixed length. The readable prefix keeps `redis-cli --scan` useful.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence


def cache_key(path: str, query: Sequence[tuple[str, str]], account_id: int | None) -> str:
    identity = json.dumps([path, sorted(query), account_id])
    return f"cache:{path}:{hashlib.sha256(identity.encode()).hexdigest()[:32]}"
