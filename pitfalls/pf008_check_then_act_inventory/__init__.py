"""PF008 Check-then-act inventory (guide: "Real-World Scenarios" › "Order Processing Flow")."""

from pitfalls._evidence import POSTGRESQL, Pitfall

PITFALL = Pitfall(
    id="PF008",
    title="Check-then-act inventory (overselling)",
    summary="Read, check, then write the stock: concurrent buyers all pass the check and oversell.",
    guide="Real-World Scenarios › Order Processing Flow",
    needs=frozenset({POSTGRESQL}),
)
