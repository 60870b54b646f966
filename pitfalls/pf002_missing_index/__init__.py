"""PF002 Missing index (guide: "Common Pitfalls and Solutions" › "Missing Indexes")."""

from pitfalls._evidence import POSTGRESQL, Pitfall

PITFALL = Pitfall(
    id="PF002",
    title="Missing index",
    summary="A listing filters on columns no index covers: every request reads the whole table.",
    guide="Database Pitfalls › Missing Indexes",
    needs=frozenset({POSTGRESQL}),
)
