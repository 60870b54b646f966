"""PF004 Cache key collision (guide: "Common Pitfalls and Solutions" › "Cache Key
Collisions")."""

from pitfalls._evidence import Pitfall

PITFALL = Pitfall(
    id="PF004",
    title="Cache key collision",
    summary="A key that leaves out an input (data type, user): one answer is served for another.",
    guide="Caching Pitfalls › Cache Key Collisions",
)
