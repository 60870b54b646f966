"""Every pitfall, by its stable ID (never renumbered), and what the runner and the docs say of it.

Each row: the ID, the slug of its package `pitfalls/pfNNN_<slug>/` (wrong.py, right.py,
evidence.py), its title, its cost in one line, the guide section it comes from and the real
servers its evidence needs.
"""

from __future__ import annotations

from pitfalls._evidence import POSTGRESQL, REDIS, Pitfall

PITFALLS: tuple[Pitfall, ...] = (
    Pitfall("PF001", "n_plus_one", "N+1 queries",
            "A query per row to fetch its related rows: the query count grows with N.",
            "Database Pitfalls › N+1 Query Problem"),
    Pitfall("PF002", "missing_index", "Missing index",
            "A listing filters on columns no index covers: every request reads the whole table.",
            "Database Pitfalls › Missing Indexes", needs=frozenset({POSTGRESQL})),
    Pitfall("PF003", "stale_cache", "Stale cache after an update",
            "A write that leaves the cached read alone: the old value is served until the TTL.",
            "Caching Pitfalls › Cache Invalidation"),
    Pitfall("PF004", "cache_key_collision", "Cache key collision",
            "A key that leaves out an input (data type, user): one answer is served for another.",
            "Caching Pitfalls › Cache Key Collisions"),
    Pitfall("PF005", "token_without_expiry", "Token without expiry or type",
            "No exp, no type: a leaked token works forever, a refresh token works as access.",
            "Authentication Pitfalls › Token Management"),
    Pitfall("PF006", "weak_password_storage", "Plain-text or fast-hash passwords",
            "Passwords stored as text or unsalted MD5/SHA-1: a database dump gives them all away.",
            "Authentication Pitfalls › Password Security"),
    Pitfall("PF007", "blocking_call_in_async", "Blocking sync database call inside async def",
            "A sync driver call in async def stalls the event loop: requests run one at a time.",
            "API Design › Dependency Injection (a sync Session in async endpoints)",
            needs=frozenset({POSTGRESQL})),
    Pitfall("PF008", "check_then_act_inventory", "Check-then-act inventory (overselling)",
            "Read, check, then write the stock: concurrent buyers all pass the check and oversell.",
            "Real-World Scenarios › Order Processing Flow", needs=frozenset({POSTGRESQL})),
    Pitfall("PF009", "racy_rate_limiter", "Racy rate limiter (GET then INCR; INCR then EXPIRE)",
            "Check and count in separate commands: bursts pass the limit, or windows never end.",
            "Caching & Performance › Rate Limiting", needs=frozenset({REDIS})),
    Pitfall("PF010", "task_inside_transaction", "Task enqueued inside the transaction",
            "Sent before the commit: it runs for a rolled-back order, or before the order exists.",
            "Real-World Scenarios › Order Processing Flow"),
)  # fmt: skip
