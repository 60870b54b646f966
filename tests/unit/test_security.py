"""Passwords and tokens without servers (guide: "JWT Authentication", "Password Security")."""

from __future__ import annotations

import asyncio
import threading
from datetime import UTC, datetime, timedelta

import bcrypt
import jwt
import pytest

from patterns.errors import AuthenticationError
from patterns.security import PasswordHasher, TokenService, TokenType
from patterns.security.passwords import OWASP_MEMORY_KIB, OWASP_TIME_COST

SECRET = "unit-test-secret-0123456789-abcdefghijklmnop"


@pytest.fixture(scope="module")
def hasher() -> PasswordHasher:
    return PasswordHasher()


@pytest.fixture
def tokens() -> TokenService:
    return TokenService(SECRET, issuer="kit", audience="kit-api")


def test_new_hashes_are_argon2id_at_owasp_parameters_or_above(hasher: PasswordHasher) -> None:
    hashed = hasher.hash("correct horse")
    assert hashed.startswith("$argon2id$")
    params = dict(p.split("=") for p in hashed.split("$")[3].split(","))
    assert int(params["m"]) >= OWASP_MEMORY_KIB == 19456
    assert int(params["t"]) >= OWASP_TIME_COST == 2
    assert hasher.verify_and_update("correct horse", hashed) == (True, None)
    assert hasher.verify_and_update("wrong horse", hashed)[0] is False


def test_parameters_below_owasp_are_refused() -> None:
    with pytest.raises(ValueError, match="OWASP"):
        PasswordHasher(memory_cost=4096)


def test_bcrypt_hash_verifies_and_asks_for_a_rehash(hasher: PasswordHasher) -> None:
    legacy = bcrypt.hashpw(b"old secret", bcrypt.gensalt(rounds=4)).decode()
    valid, new_hash = hasher.verify_and_update("old secret", legacy)
    assert valid
    assert new_hash is not None
    assert new_hash.startswith("$argon2id$")


def test_unknown_user_and_corrupt_hash_fail_without_raising(hasher: PasswordHasher) -> None:
    assert hasher.verify_and_update("anything", None) == (False, None)
    assert hasher.verify_and_update("anything", "$unknown$scheme") == (False, None)


async def test_hashing_runs_off_the_event_loop(hasher: PasswordHasher) -> None:
    loop_thread = threading.get_ident()
    seen: list[int] = []
    original = hasher.hash

    def spy(password: str) -> str:
        seen.append(threading.get_ident())
        return original(password)

    hasher.hash = spy  # type: ignore[method-assign]
    try:
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0)

        task = asyncio.create_task(ticker())
        await hasher.hash_async("pw")
        task.cancel()
    finally:
        del hasher.hash
    assert seen
    assert seen[0] != loop_thread
    assert ticks > 0  # the loop kept running while argon2 worked


def test_tokens_round_trip_with_string_sub_and_all_claims(tokens: TokenService) -> None:
    token, claims = tokens.create(42, TokenType.ACCESS)
    payload = jwt.decode(token, options={"verify_signature": False})
    assert payload["sub"] == "42"
    assert set(payload) == {"sub", "type", "jti", "iat", "exp", "iss", "aud", "ver"}
    assert payload["exp"] - payload["iat"] == 30 * 60
    assert payload["ver"] == 0
    decoded = tokens.decode(token, TokenType.ACCESS)
    assert decoded == claims


def test_refresh_tokens_live_seven_days_by_default(tokens: TokenService) -> None:
    _, claims = tokens.create("1", TokenType.REFRESH)
    assert claims.exp - claims.iat == timedelta(days=7)


def test_pyjwt_rejects_an_integer_sub_as_the_guide_encodes_it() -> None:
    """Erratum (guide "Token Management"): `{"sub": user_id}` with an int no longer decodes."""
    token = jwt.encode({"sub": 42, "exp": datetime.now(UTC) + timedelta(minutes=5)}, SECRET)
    with pytest.raises(jwt.exceptions.InvalidSubjectError, match="Subject must be a string"):
        jwt.decode(token, SECRET, algorithms=["HS256"])


def test_a_token_without_expiry_is_refused(tokens: TokenService) -> None:
    """Erratum-adjacent (guide "Token Management", the wrong way): no `exp` never dies; the
    kit requires `exp`."""
    now = datetime.now(UTC)
    forever = jwt.encode(
        {"sub": "1", "type": "access", "jti": "x", "iat": now, "iss": "kit", "aud": "kit-api"},
        SECRET,
    )
    with pytest.raises(AuthenticationError) as info:
        tokens.decode(forever, TokenType.ACCESS)
    assert info.value.error_code == "token_invalid"


def _signed(tokens: TokenService, **overrides: object) -> str:
    """A token signed with the service's own key, its claims as given (None: left out)."""
    now = int(datetime.now(UTC).timestamp())
    claims: dict[str, object] = {
        "sub": "1",
        "type": "access",
        "jti": "j" * 32,
        "iat": now,
        "exp": now + 60,
        "iss": tokens.issuer,
        "aud": tokens.audience,
    }
    claims.update(overrides)
    return jwt.encode({k: v for k, v in claims.items() if v is not None}, SECRET)


def test_a_token_carries_the_credentials_version_it_was_issued_under(
    tokens: TokenService,
) -> None:
    pair = tokens.create_pair(5, version=3)
    assert tokens.decode(pair.access_token, TokenType.ACCESS).version == 3
    assert tokens.decode(pair.refresh_token, TokenType.REFRESH).version == 3
    # Issued before versions existed: version 0, what every user starts at.
    assert tokens.decode(_signed(tokens), TokenType.ACCESS).version == 0


@pytest.mark.parametrize("ver", [True, -1, 2**31, "1", 1.5, [1]], ids=repr)
def test_a_malformed_credentials_version_is_an_invalid_token(
    tokens: TokenService, ver: object
) -> None:
    token = _signed(tokens, ver=ver)
    with pytest.raises(AuthenticationError) as info:
        tokens.decode(token, TokenType.ACCESS)
    assert info.value.error_code == "token_invalid"


@pytest.mark.parametrize("fam", [123, "", "f" * 65, ["a"], True], ids=repr)
def test_a_malformed_family_is_an_invalid_token(tokens: TokenService, fam: object) -> None:
    token = _signed(tokens, fam=fam)
    with pytest.raises(AuthenticationError) as info:
        tokens.decode(token, TokenType.ACCESS)
    assert info.value.error_code == "token_invalid"


def test_a_pair_shares_a_new_family_and_a_refresh_keeps_it(tokens: TokenService) -> None:
    login = tokens.create_pair(1)
    assert login.access.family == login.refresh.family is not None
    assert tokens.create_pair(1).access.family != login.access.family  # another login
    rotated = tokens.create_pair(1, family=login.refresh.family)
    decoded = tokens.decode(rotated.refresh_token, TokenType.REFRESH)
    assert decoded.family == login.refresh.family


def test_a_version_out_of_range_is_refused_at_issue(tokens: TokenService) -> None:
    with pytest.raises(ValueError, match="version"):
        tokens.create(1, TokenType.ACCESS, version=-1)


@pytest.mark.parametrize(
    "claims",
    [
        {"exp": 10**30},
        {"exp": 1e300},
        {"exp": float("inf")},  # json.dumps writes Infinity, and json.loads reads it back
        {"iat": -(10**30)},
        {"iat": -1},
    ],
    ids=["exp-10**30", "exp-1e300", "exp-inf", "iat-minus-10**30", "iat-before-1970"],
)
def test_a_signed_token_with_a_time_beyond_datetime_is_invalid_not_a_crash(
    tokens: TokenService, cached_tokens: TokenService, claims: dict[str, object]
) -> None:
    for service in (tokens, cached_tokens):
        with pytest.raises(AuthenticationError) as info:
            service.decode(_signed(tokens, **claims), TokenType.ACCESS)
        assert info.value.error_code == "token_invalid"


def test_the_latest_expiry_accepted_still_works_from_the_verified_cache(
    cached_tokens: TokenService,
) -> None:
    """Remembered claims have their expiry compared again, with the leeway added: the latest
    expiry a token may carry leaves room for that sum."""
    token = _signed(cached_tokens, exp=int(datetime(8999, 12, 31, tzinfo=UTC).timestamp()))
    first = cached_tokens.decode(token, TokenType.ACCESS)
    assert cached_tokens.decode(token, TokenType.ACCESS) == first


@pytest.mark.parametrize(
    ("token_type", "expected", "message"),
    [
        (TokenType.ACCESS, TokenType.REFRESH, "A refresh token is required."),
        (TokenType.REFRESH, TokenType.ACCESS, "An access token is required."),
    ],
)
def test_a_token_of_the_wrong_type_says_which_is_required(
    tokens: TokenService, token_type: TokenType, expected: TokenType, message: str
) -> None:
    token, _ = tokens.create(1, token_type)
    with pytest.raises(AuthenticationError) as info:
        tokens.decode(token, expected)
    assert info.value.error_code == "token_wrong_type"
    assert info.value.message == message


def test_unsupported_algorithm_is_refused_at_construction() -> None:
    with pytest.raises(ValueError, match="unsupported"):
        TokenService(SECRET, algorithm="none", issuer="i", audience="a")


def test_passlib_bcrypt_context_fails_on_bcrypt_5() -> None:
    """Erratum (guide "JWT Authentication"): passlib's `CryptContext(schemes=["bcrypt"])` cannot
    hash with bcrypt 5 (its self-test feeds bcrypt a password over 72 bytes, which bcrypt 5
    refuses), so the guide's `pwd_context` breaks on a current install."""
    passlib_context = pytest.importorskip("passlib.context")
    from importlib.metadata import version

    assert version("bcrypt").startswith("5.")
    ctx = passlib_context.CryptContext(schemes=["bcrypt"], deprecated="auto")
    with pytest.raises(ValueError, match="72 bytes"):
        ctx.hash("testpass123")


class CountingDecode:
    """Wraps `jwt.decode` (as `patterns.security.jwt` calls it) to count verifications."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls = 0
        self._real = jwt.decode
        monkeypatch.setattr("patterns.security.jwt.jwt.decode", self)

    def __call__(self, *args: object, **kwargs: object) -> object:
        self.calls += 1
        return self._real(*args, **kwargs)  # type: ignore[arg-type]


@pytest.fixture
def cached_tokens() -> TokenService:
    return TokenService(SECRET, issuer="kit", audience="kit-api", verified_cache_size=2)


def test_a_token_verified_once_is_not_verified_again(
    cached_tokens: TokenService, monkeypatch: pytest.MonkeyPatch
) -> None:
    token, claims = cached_tokens.create(7, TokenType.ACCESS)
    counting = CountingDecode(monkeypatch)
    assert cached_tokens.decode(token, TokenType.ACCESS) == claims
    assert cached_tokens.decode(token, TokenType.ACCESS) == claims
    assert counting.calls == 1


def test_a_remembered_token_still_expires(
    cached_tokens: TokenService, monkeypatch: pytest.MonkeyPatch
) -> None:
    token, claims = cached_tokens.create(7, TokenType.ACCESS)
    cached_tokens.decode(token, TokenType.ACCESS)
    later = claims.exp + timedelta(seconds=11)  # past the 10 s leeway

    class Later(datetime):
        @classmethod
        def now(cls, tz: object = None) -> Later:
            return cls.fromtimestamp(later.timestamp(), UTC)

    monkeypatch.setattr("patterns.security.jwt.datetime", Later)
    with pytest.raises(AuthenticationError) as info:
        cached_tokens.decode(token, TokenType.ACCESS)
    assert info.value.error_code == "token_expired"


def test_a_remembered_token_of_the_wrong_type_is_refused(cached_tokens: TokenService) -> None:
    token, _ = cached_tokens.create(7, TokenType.ACCESS)
    cached_tokens.decode(token, TokenType.ACCESS)
    with pytest.raises(AuthenticationError) as info:
        cached_tokens.decode(token, TokenType.REFRESH)
    assert info.value.error_code == "token_wrong_type"


def test_refused_tokens_are_never_remembered(
    cached_tokens: TokenService, monkeypatch: pytest.MonkeyPatch
) -> None:
    token, _ = cached_tokens.create(7, TokenType.ACCESS)
    tampered = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    counting = CountingDecode(monkeypatch)
    for _ in range(2):
        with pytest.raises(AuthenticationError):
            cached_tokens.decode(tampered, TokenType.ACCESS)
    assert counting.calls == 2


def test_the_verified_cache_is_bounded(
    cached_tokens: TokenService, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second, third = (cached_tokens.create(i, TokenType.ACCESS)[0] for i in (1, 2, 3))
    counting = CountingDecode(monkeypatch)
    for token in (first, second, third, third, first):
        cached_tokens.decode(token, TokenType.ACCESS)
    # size 2: the third token pushed the first out, so it is verified a second time
    assert counting.calls == 4
