"""PF010 A task enqueued inside the transaction (guide: "Real-World Scenarios" › "Order
Processing Flow", "Celery Tasks")."""

from pitfalls._evidence import Pitfall

PITFALL = Pitfall(
    id="PF010",
    title="Task enqueued inside the transaction",
    summary="Sent before the commit: it runs for a rolled-back order, or before the order exists.",
    guide="Real-World Scenarios › Order Processing Flow",
)
