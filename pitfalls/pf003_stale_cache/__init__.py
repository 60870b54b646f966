"""PF003 Stale cache after an update (guide: "Common Pitfalls and Solutions" › "Cache
Invalidation")."""
