"""PF009 A racy rate limiter (guide: "Caching & Performance" › "Rate Limiting")."""

from pitfalls._evidence import REDIS, Pitfall

PITFALL = Pitfall(
    id="PF009",
    title="Racy rate limiter (GET then INCR; INCR then EXPIRE)",
    summary="Check and count in separate commands: bursts pass the limit, or windows never end.",
    guide="Caching & Performance › Rate Limiting",
    needs=frozenset({REDIS}),
)
