"""PF001 N+1 queries (guide: "Common Pitfalls and Solutions" › "N+1 Query Problem")."""

from pitfalls._evidence import Pitfall

PITFALL = Pitfall(
    id="PF001",
    title="N+1 queries",
    summary="A query per row to fetch its related rows: the query count grows with N.",
    guide="Database Pitfalls › N+1 Query Problem",
)
