"""PF005 right: the kit's `TokenService`: every token has exp, iat, jti, type, issuer and
audience, and decoding requires them and the expected type (guide: "Token Management")."""

from __future__ import annotations

from datetime import datetime

from patterns.security import TokenService, TokenType


def tokens(secret: str) -> TokenService:
    # Access tokens live 30 minutes, refresh tokens 7 days (the kit's defaults).
    return TokenService(secret, issuer="kit", audience="kit-api")


def create_token(
    service: TokenService, user_id: int, kind: TokenType, *, now: datetime | None = None
) -> str:
    token, _claims = service.create(user_id, kind, now=now)
    return token


def current_user_id(service: TokenService, token: str) -> str:
    # Raises AuthenticationError (401): token_expired, token_wrong_type, token_invalid.
    return service.decode(token, TokenType.ACCESS).sub
