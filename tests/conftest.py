"""Wires the harness (patterns.testing, loaded as a pytest plugin) to reference_app's migrations."""

from __future__ import annotations

from reference_app.core import migrations


def pytest_kit_setup_database(url: str) -> bool:
    """The template database is built by the real migrations, once per run."""
    migrations.upgrade(url)
    return True
