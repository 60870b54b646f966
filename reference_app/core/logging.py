"""Logging set-up from settings (guide: "Structured Logging"), for the API and the worker."""

from __future__ import annotations

import logging

from patterns.observability.logging import configure_logging
from reference_app.core.config import Settings, get_settings


def wants_json(settings: Settings) -> bool:
    """`KIT_LOG_JSON` when set; otherwise JSON in production and the console elsewhere."""
    return settings.log_json if settings.log_json is not None else settings.env == "prod"


# Libraries' start-up chatter kept below INFO: Alembic lists each plugin it loads.
QUIET_LOGGERS = ("alembic.runtime.plugins",)


def setup_logging(settings: Settings | None = None) -> None:
    settings = settings or get_settings()
    configure_logging(
        level=settings.log_level, json=wants_json(settings), log_file=settings.log_file
    )
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
