"""PF008 Check-then-act inventory (guide: "Real-World Scenarios" › "Order Processing Flow")."""
