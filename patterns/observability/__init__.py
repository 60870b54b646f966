"""Request ids, metrics and structured logs (guide: "Monitoring & Observability")."""
