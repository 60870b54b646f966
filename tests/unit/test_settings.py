"""Settings: one source, and a weak secret refused outside dev and test."""

from __future__ import annotations

import secrets

import pytest
from pydantic import SecretStr, ValidationError

from patterns.db import async_url, sync_url
from reference_app.core.config import DEV_SECRET_KEY, Settings


def test_defaults_are_the_embedded_mode() -> None:
    s = Settings(_env_file=None)
    assert s.is_embedded
    assert s.access_token_expire_minutes == 30
    assert s.refresh_token_expire_days == 7
    assert s.order_processing_delay_s == 300


@pytest.mark.parametrize(
    "secret",
    [DEV_SECRET_KEY, "short", "a" * 64, "changeme" * 8],
    ids=["default", "short", "repeated", "low-entropy"],
)
def test_weak_or_default_secret_is_refused_in_prod(secret: str) -> None:
    with pytest.raises(ValidationError, match="KIT_SECRET_KEY"):
        Settings(env="prod", secret_key=SecretStr(secret), _env_file=None)


def test_strong_secret_is_accepted_in_prod_and_default_allowed_in_dev() -> None:
    strong = secrets.token_urlsafe(48)
    assert Settings(env="prod", secret_key=SecretStr(strong), _env_file=None)
    assert Settings(env="dev", _env_file=None)


def test_settings_come_from_kit_environment_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KIT_ORDER_PROCESSING_DELAY_S", "7")
    monkeypatch.setenv("KIT_REDIS_URL", "redis://example:6379/3")
    s = Settings(_env_file=None)
    assert s.order_processing_delay_s == 7
    assert not s.is_embedded


@pytest.mark.parametrize(
    ("given", "async_expected", "sync_expected"),
    [
        ("postgresql://u@h/db", "postgresql+asyncpg://u@h/db", "postgresql+psycopg://u@h/db"),
        ("postgres://u@h/db", "postgresql+asyncpg://u@h/db", "postgresql+psycopg://u@h/db"),
        (
            "postgresql+psycopg://u@h/db",
            "postgresql+asyncpg://u@h/db",
            "postgresql+psycopg://u@h/db",
        ),
        ("sqlite:///./x.db", "sqlite+aiosqlite:///./x.db", "sqlite+pysqlite:///./x.db"),
    ],
)
def test_one_url_gives_the_async_and_the_sync_driver(
    given: str, async_expected: str, sync_expected: str
) -> None:
    assert async_url(given).render_as_string() == async_expected
    assert sync_url(given).render_as_string() == sync_expected


def test_unsupported_backend_is_refused() -> None:
    with pytest.raises(ValueError, match="unsupported"):
        async_url("mysql://u@h/db")
