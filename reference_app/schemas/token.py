"""Token responses and requests (guide: "JWT Authentication")."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, StringConstraints

TokenStr = Annotated[str, StringConstraints(min_length=1, max_length=4096)]


class TokenResponse(BaseModel):
    access_token: str
    refresh_token: str
    token_type: Literal["bearer"] = "bearer"  # noqa: S105 (the OAuth2 token type, not a secret)
    expires_in: int


class RefreshRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    refresh_token: TokenStr


class LogoutRequest(BaseModel):
    """Optionally revoke the refresh token along with the access token."""

    model_config = ConfigDict(extra="forbid")
    refresh_token: TokenStr | None = None
