"""JWT access and refresh tokens with PyJWT (guide: "JWT Authentication", "Token Management").

Differences from the guide: PyJWT instead of the unmaintained python-jose; `sub` is always a
string (PyJWT 2.10+ rejects an integer `sub`, which the guide's "Token Management" example
encodes); every token carries `type`, `jti`, `iat`, `iss` and `aud`, and decoding pins the
algorithm list and requires the claims, so an `alg: none` token, a refresh token used as an
access token, or a token for another audience are all refused.

A token may also carry `ver`, the subject's credentials version when it was issued (0 when
absent): the app bumps the version when a password changes and refuses tokens that carry any
other, so changing a password ends every session opened with the old one. A counter rather
than a comparison with `iat`, which has whole seconds: a token issued in the same second as the
change could be neither refused safely nor accepted safely.
"""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt

from patterns.errors import AuthenticationError
from patterns.validation import INT32_MAX

REQUIRED_CLAIMS = ["exp", "iat", "sub", "type", "jti", "iss", "aud"]
# PyJWT accepts any integer as `iat`/`exp`; beyond this (with room for the leeway) `datetime`
# overflows, so a validly signed token with an absurd time would be a 500 instead of a 401.
_LATEST = int(datetime(9000, 1, 1, tzinfo=UTC).timestamp())


class TokenType(enum.StrEnum):
    ACCESS = "access"
    REFRESH = "refresh"


@dataclass(frozen=True)
class Claims:
    sub: str
    type: TokenType
    jti: str
    iat: datetime
    exp: datetime
    version: int = 0
    """The subject's credentials version when the token was issued (the `ver` claim)."""
    family: str | None = None
    """The login this token descends from (the `fam` claim): one id for the pair a login issues
    and every pair rotated from it, so a replayed refresh token can end them all."""


@dataclass(frozen=True)
class TokenPair:
    access_token: str
    refresh_token: str
    access: Claims
    refresh: Claims


class TokenService:
    """Issues and checks tokens for one issuer/audience with one pinned algorithm."""

    def __init__(
        self,
        secret: str,
        *,
        algorithm: str = "HS256",
        issuer: str,
        audience: str,
        access_ttl: timedelta = timedelta(minutes=30),
        refresh_ttl: timedelta = timedelta(days=7),
        leeway: timedelta = timedelta(seconds=10),
        verified_cache_size: int = 0,
    ) -> None:
        if algorithm not in {"HS256", "HS384", "HS512"}:
            raise ValueError(f"unsupported algorithm {algorithm!r}")
        if verified_cache_size < 0:
            raise ValueError("verified_cache_size must be >= 0")
        self.issuer = issuer
        self.audience = audience
        self.ttl = {TokenType.ACCESS: access_ttl, TokenType.REFRESH: refresh_ttl}
        self._secret = secret
        self._algorithm = algorithm
        self._leeway = leeway
        # Tokens already verified, by their exact text: a client sends the same access token
        # with every request, and verifying it (HMAC, base64, JSON, claim checks) is a
        # measurable share of an authenticated request's CPU (docs/performance.md). Only
        # successful decodes are kept, and expiry, the one check whose answer changes with
        # time, is made again on every use. Not locked: call `decode` from one thread (the
        # event loop's; the app's dependencies that call it are `async def`).
        self._verified: dict[str, Claims] = {}
        self._verified_max = verified_cache_size

    def create(
        self,
        subject: str | int,
        token_type: TokenType | str,
        *,
        now: datetime | None = None,
        version: int = 0,
        family: str | None = None,
    ) -> tuple[str, Claims]:
        token_type = TokenType(token_type)
        if not 0 <= version <= INT32_MAX:
            raise ValueError("version must be between 0 and 2**31 - 1")
        issued = (now or datetime.now(UTC)).replace(microsecond=0)
        claims = Claims(
            sub=str(subject),
            type=token_type,
            jti=uuid.uuid4().hex,
            iat=issued,
            exp=issued + self.ttl[token_type],
            version=version,
            family=family,
        )
        payload: dict[str, Any] = {
            "sub": claims.sub,
            "type": claims.type.value,
            "jti": claims.jti,
            "iat": claims.iat,
            "exp": claims.exp,
            "iss": self.issuer,
            "aud": self.audience,
            "ver": claims.version,
        }
        if family is not None:
            payload["fam"] = family
        token = jwt.encode(payload, self._secret, algorithm=self._algorithm)
        return token, claims

    def create_pair(
        self, subject: str | int, *, version: int = 0, family: str | None = None
    ) -> TokenPair:
        """An access and a refresh token of one family: a new one (a login), or `family` (a
        refresh, which keeps the login's)."""
        family = family or uuid.uuid4().hex
        access, access_claims = self.create(
            subject, TokenType.ACCESS, version=version, family=family
        )
        refresh, refresh_claims = self.create(
            subject, TokenType.REFRESH, version=version, family=family
        )
        return TokenPair(access, refresh, access_claims, refresh_claims)

    def decode(self, token: str, expected: TokenType | str) -> Claims:
        """Verified claims of a token of the expected type, else `AuthenticationError` (401).

        With `verified_cache_size`, a token verified before is not verified again: its claims
        come from memory and only its expiry and type are checked."""
        expected = TokenType(expected)
        cached = self._verified.get(token) if self._verified_max else None
        if cached is not None:
            if datetime.now(UTC) >= cached.exp + self._leeway:
                self._verified.pop(token, None)
                raise AuthenticationError("The token has expired.", code="token_expired")
            return self._of_type(cached, expected)
        claims = self._verify(token, expected)
        if self._verified_max:
            if len(self._verified) >= self._verified_max:
                self._verified.pop(next(iter(self._verified)), None)  # the oldest entry
            self._verified[token] = claims
        return self._of_type(claims, expected)

    @staticmethod
    def _of_type(claims: Claims, expected: TokenType) -> Claims:
        if claims.type is not expected:
            raise _wrong_type(expected)
        return claims

    def _verify(self, token: str, expected: TokenType) -> Claims:
        try:
            payload = jwt.decode(
                token,
                self._secret,
                algorithms=[self._algorithm],
                audience=self.audience,
                issuer=self.issuer,
                leeway=self._leeway,
                options={"require": REQUIRED_CLAIMS},
            )
        except jwt.ExpiredSignatureError:
            raise AuthenticationError("The token has expired.", code="token_expired") from None
        except jwt.PyJWTError:
            raise _invalid() from None
        raw_type = payload.get("type")
        token_type = next((t for t in TokenType if t.value == raw_type), None)
        if token_type is None:
            raise _wrong_type(expected)
        sub, jti, version = payload["sub"], payload["jti"], payload.get("ver", 0)
        if not isinstance(sub, str) or not isinstance(jti, str) or not sub or not jti:
            raise _invalid()
        # `type(...) is int`: JSON `true` is a bool, which Python would take for 1
        if type(version) is not int or not 0 <= version <= INT32_MAX:
            raise _invalid()
        family = payload.get("fam")  # absent in tokens issued before families existed
        if "fam" in payload and (not isinstance(family, str) or not 0 < len(family) <= 64):
            raise _invalid()
        return Claims(
            sub=sub,
            type=token_type,
            jti=jti,
            iat=_instant(payload["iat"]),
            exp=_instant(payload["exp"]),
            version=version,
            family=family,
        )


def _invalid() -> AuthenticationError:
    return AuthenticationError("The token is not valid.", code="token_invalid")


def _wrong_type(expected: TokenType) -> AuthenticationError:
    article = "An" if expected.value[0] in "aeiou" else "A"
    return AuthenticationError(
        f"{article} {expected.value} token is required.", code="token_wrong_type"
    )


def _instant(value: Any) -> datetime:
    """A time claim PyJWT has already read as an integer, as an aware datetime; one that
    `datetime` cannot hold makes the token invalid."""
    seconds = int(value)
    if not 0 <= seconds <= _LATEST:
        raise _invalid()
    return datetime.fromtimestamp(seconds, UTC)
