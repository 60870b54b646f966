"""The app's token service, built from settings once per app (guide: "JWT Authentication")."""

from __future__ import annotations

from datetime import timedelta

from patterns.security import TokenService
from reference_app.core.config import Settings


def make_token_service(settings: Settings) -> TokenService:
    return TokenService(
        settings.secret_key.get_secret_value(),
        algorithm=settings.jwt_algorithm,
        issuer=settings.jwt_issuer,
        audience=settings.jwt_audience,
        access_ttl=timedelta(minutes=settings.access_token_expire_minutes),
        refresh_ttl=timedelta(days=settings.refresh_token_expire_days),
        # Verified tokens remembered per process (a few MB at most); revocation is still
        # checked in Redis on every request.
        verified_cache_size=4096,
    )
