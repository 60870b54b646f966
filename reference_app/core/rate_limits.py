"""The app's rate limits (guide: "Rate Limiting", "User Management Flow"), from settings."""

from __future__ import annotations

from fastapi import Depends, Request
from redis.asyncio import Redis

from patterns.rate_limit import FailedAttemptLimit, Rate, RateLimit, client_ip
from reference_app.core.metrics import RATE_LIMIT_REJECTIONS
from reference_app.core.state import app_state


def _setting(name: str) -> object:
    def rate(request: Request) -> Rate:
        return Rate.parse(getattr(app_state(request.app).settings, f"rate_limit_{name}"))

    return rate


def _fail_open(request: Request) -> bool:
    return bool(app_state(request.app).settings.rate_limit_fail_open)


def _redis(request: Request) -> Redis:
    return app_state(request.app).redis.client


def _count_rejection(limit: str) -> None:
    RATE_LIMIT_REJECTIONS.labels(limit=limit).inc()


def _limit(name: str) -> RateLimit:
    return RateLimit(
        name,
        rate=_setting(name),  # type: ignore[arg-type]
        redis=_redis,
        key=client_ip,
        fail_open=_fail_open,
        on_reject=_count_rejection,
    )


register_limit = Depends(_limit("register"))
login_limit = Depends(_limit("login"))
login_account_limit = FailedAttemptLimit(
    "login_account",
    rate=_setting("login_account"),  # type: ignore[arg-type]
    redis=_redis,
    fail_open=_fail_open,
    on_reject=_count_rejection,
)
"""Failed logins per account, from any address (`async with login_account_limit.attempt(...)`)."""
