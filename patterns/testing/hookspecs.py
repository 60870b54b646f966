"""Hooks the harness calls in the project's conftest."""

from __future__ import annotations

import pytest


@pytest.hookspec(firstresult=True)
def pytest_kit_setup_database(url: str) -> bool | None:
    """Build the schema in the template database at `url` (a plain `postgresql://` URL).

    Called once per test run, before any worker database is cloned from the template. Run the
    project's real migrations here. Return True when handled.
    """
