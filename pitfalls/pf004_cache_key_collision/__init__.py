"""PF004 Cache key collision (guide: "Common Pitfalls and Solutions" › "Cache Key
Collisions")."""
