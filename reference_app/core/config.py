"""The single source of settings, read from `KIT_*` variables (docs/quick-start.md).

With nothing set, the app runs on the embedded default: a SQLite file and in-process fakeredis.
"""

from __future__ import annotations

import zlib
from functools import lru_cache
from typing import Literal, Self

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEV_SECRET_KEY = "dev-only-insecure-secret-key-change-me-0123456789"  # noqa: S105 (refused in prod)


def is_weak_secret(value: str) -> bool:
    """Too short, the dev default, too few distinct characters, or repetitive (compresses)."""
    if value == DEV_SECRET_KEY or len(value) < 32 or len(set(value)) < 12:
        return True
    return len(zlib.compress(value.encode())) < 0.75 * len(value)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="KIT_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    env: Literal["dev", "test", "prod"] = "dev"
    project_name: str = "Core Concepts Kit"
    api_v1_prefix: str = "/api/v1"

    # Requests: a larger body is refused with 413 before it is read into memory.
    max_body_bytes: int = Field(default=1_048_576, ge=1024)

    # Storage. Defaults are the embedded mode: no servers needed.
    database_url: str = "sqlite:///./.kit/kit.db"
    redis_url: str | None = None  # None → in-process fakeredis
    redis_max_connections: int = Field(default=100, ge=1, le=10_000)
    # After a Redis timeout or refused connection, skip Redis for this long (0: never skip).
    redis_circuit_open_s: float = Field(default=2.0, ge=0, le=60)
    # Sized for the concurrency a worker is load-tested at (32 clients, docs/performance.md):
    # each request holds at most one connection, so the pool never has to open one in a steady
    # state. Connections open lazily: a quieter worker keeps fewer. Overflow connections are
    # closed as soon as they are returned, so a pool that leans on them opens one per request.
    db_pool_size: int = Field(default=32, ge=1, le=200)
    db_max_overflow: int = Field(default=8, ge=0, le=200)
    db_echo: bool = False

    # Security.
    secret_key: SecretStr = SecretStr(DEV_SECRET_KEY)
    jwt_algorithm: Literal["HS256", "HS384", "HS512"] = "HS256"
    jwt_issuer: str = "core-concepts-kit"
    jwt_audience: str = "core-concepts-kit-api"
    access_token_expire_minutes: int = Field(default=30, ge=1)
    refresh_token_expire_days: int = Field(default=7, ge=1)
    # Redis down: honour possibly-revoked access tokens (True) or answer 503 (False).
    auth_revocation_fail_open: bool = True
    # How long an authenticated user's snapshot is cached in Redis. Changes through the app drop
    # it at once; this bounds how long a change made by hand in the database goes unseen.
    auth_principal_ttl_s: int = Field(default=60, ge=1, le=3600)
    # A refresh token used again within this many seconds of its first use is taken for the
    # same client's duplicate (refused only); later, for a replay (its whole login is ended).
    auth_refresh_reuse_grace_s: float = Field(default=10.0, ge=0, le=300)
    first_admin_email: str | None = None
    first_admin_password: SecretStr | None = None

    # Caching.
    cache_warm_on_startup: bool = True

    # Background work.
    celery_broker_url: str | None = None  # default: the Redis URL
    celery_result_backend: str | None = None
    order_processing_delay_s: int = Field(default=300, ge=0)
    # Transient task failures: exponential backoff with full jitter (patterns.tasks.RetryPolicy).
    task_max_retries: int = Field(default=5, ge=0, le=100)
    task_retry_base_s: float = Field(default=2.0, gt=0, le=3600)
    task_retry_cap_s: float = Field(default=300.0, gt=0, le=86_400)
    worker_concurrency: int | None = Field(default=None, ge=1, le=256)  # None → CPU count

    # Rate limits, "<count>/<seconds>".
    rate_limit_register: str = "5/3600"
    rate_limit_login: str = "10/60"
    # Failed logins per account from any number of addresses (credential stuffing).
    rate_limit_login_account: str = "10/900"
    rate_limit_fail_open: bool = True

    # Observability.
    log_level: str = "INFO"
    log_json: bool | None = None  # None → JSON in prod, console otherwise
    log_file: str | None = None
    # FastAPI's native OpenTelemetry (traces, metrics and logs to the global providers). Off:
    # the kit's Prometheus metrics and JSON lines cover each request, and the check FastAPI
    # makes on every request for a configured provider costs about 5 µs (docs/performance.md).
    otel: bool = False

    @model_validator(mode="after")
    def _refuse_weak_secret_outside_dev(self) -> Self:
        if self.env in ("dev", "test"):
            return self
        secret = self.secret_key.get_secret_value()
        if is_weak_secret(secret):
            raise ValueError(
                "KIT_SECRET_KEY is missing, the development default, or weak: outside dev and "
                "test it must be at least 32 characters of real randomness "
                '(python -c "import secrets; print(secrets.token_urlsafe(48))")'
            )
        return self

    @property
    def is_embedded(self) -> bool:
        """SQLite and fakeredis: the zero-setup mode of `python3 noxfile.py -s serve`."""
        return self.database_url.startswith("sqlite") and self.redis_url is None

    @property
    def broker_url(self) -> str:
        # The in-memory broker's URL names a host so that kombu need not warn it assumed one.
        return self.celery_broker_url or self.redis_url or "memory://localhost//"

    @property
    def result_backend(self) -> str:
        return self.celery_result_backend or self.redis_url or "cache+memory://"


@lru_cache
def get_settings() -> Settings:
    """Settings from the environment, read once per process."""
    return Settings()
