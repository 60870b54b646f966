"""Token responses and requests (guide: "JWT Authentication")."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import Form
from fastapi.security import OAuth2PasswordRequestForm
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


class LoginForm(OAuth2PasswordRequestForm):
    """The OAuth2 password form (guide: "JWT Authentication"), documented as it is validated:
    FastAPI reads an empty form field as a missing one (a 422), so `username` and `password` are
    declared non-empty instead of allowing the `""` the plain form's schema does."""

    def __init__(
        self,
        *,
        grant_type: Annotated[str | None, Form(pattern="^password$")] = None,
        username: Annotated[str, Form(min_length=1)],
        password: Annotated[str, Form(min_length=1, json_schema_extra={"format": "password"})],
        scope: Annotated[str, Form()] = "",
        client_id: Annotated[str | None, Form()] = None,
        client_secret: Annotated[str | None, Form(json_schema_extra={"format": "password"})] = None,
    ) -> None:
        super().__init__(
            grant_type=grant_type,
            username=username,
            password=password,
            scope=scope,
            client_id=client_id,
            client_secret=client_secret,
        )
