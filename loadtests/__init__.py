"""Locust loads, SLO thresholds and the `nox -s load` orchestration (guide: "Load Testing")."""
