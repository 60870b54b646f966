"""PF001 N+1 queries (guide: "Common Pitfalls and Solutions" › "N+1 Query Problem")."""
