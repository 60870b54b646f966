"""Exercise 6 — JWT with expiry, type and a pinned algorithm (guide: "JWT Authentication").

`create_access_token` is what login hands out; `read_access_token` is what every authenticated
request runs (`GET /me` in the check). Today a token never expires, a refresh token (or any
token signed with the secret) passes as an access token, the token itself picks the algorithm
it is checked with, and a malformed token is a 500. Make access tokens carry `exp`
(`ACCESS_TTL` after it was issued), `iat` and `type: "access"`; make `read_access_token` accept only
HS256, require those claims, and raise the kit's `AuthenticationError` (a 401) for anything
wrong.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import jwt

from learn.support import SECRET

ALGORITHM = "HS256"
ACCESS_TTL = timedelta(minutes=15)


def create_access_token(account_id: int, *, now: datetime | None = None) -> str:
    issued = now or datetime.now(UTC)
    return jwt.encode({"sub": str(account_id), "iat": issued}, SECRET, algorithm=ALGORITHM)


def read_access_token(token: str) -> int:
    """The account id in a valid access token."""
    header = jwt.get_unverified_header(token)
    claims = jwt.decode(token, SECRET, algorithms=[header["alg"]])
    return int(claims["sub"])
