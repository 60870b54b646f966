"""PF010 A task enqueued inside the transaction (guide: "Real-World Scenarios" › "Order
Processing Flow", "Celery Tasks")."""
