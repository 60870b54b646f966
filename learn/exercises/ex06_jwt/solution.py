"""Exercise 6 — JWT with expiry, type and a pinned algorithm (guide: "JWT Authentication").

The server decides how a token is checked: one algorithm, pinned; the claims it relies on
required; the type checked so a refresh token is not an access token. Every PyJWT error becomes
the kit's `AuthenticationError`, a 401 in the error envelope, never a 500.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import jwt

from learn.support import SECRET
from patterns.errors import AuthenticationError

ALGORITHM = "HS256"
ACCESS_TTL = timedelta(minutes=15)


def create_access_token(account_id: int, *, now: datetime | None = None) -> str:
    issued = now or datetime.now(UTC)
    claims = {"sub": str(account_id), "type": "access", "iat": issued, "exp": issued + ACCESS_TTL}
    return jwt.encode(claims, SECRET, algorithm=ALGORITHM)


def read_access_token(token: str) -> int:
    """The account id in a valid access token; `AuthenticationError` otherwise."""
    try:
        claims = jwt.decode(
            token, SECRET, algorithms=[ALGORITHM], options={"require": ["exp", "iat", "sub"]}
        )
    except jwt.ExpiredSignatureError:
        raise AuthenticationError("The token has expired.", code="token_expired") from None
    except jwt.PyJWTError:
        raise AuthenticationError("The token is not valid.", code="token_invalid") from None
    if claims.get("type") != "access" or not str(claims["sub"]).isdigit():
        raise AuthenticationError("The token is not valid.", code="token_invalid")
    return int(claims["sub"])
