"""PF005 wrong: tokens with no expiry and no type, checked only for their signature (guide:
"Token Management")."""

from __future__ import annotations

import jwt


def create_token(secret: str, user_id: int) -> str:
    # The same shape serves as access and refresh token; nothing in it ever runs out.
    return jwt.encode({"sub": str(user_id)}, secret, algorithm="HS256")


def current_user_id(secret: str, token: str) -> str:
    # A valid signature is all it takes: no exp to check, no type to compare.
    claims = jwt.decode(token, secret, algorithms=["HS256"])
    return str(claims["sub"])
