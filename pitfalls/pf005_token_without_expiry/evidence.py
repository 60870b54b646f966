"""PF005 evidence: tokens of various ages and kinds presented as an access token, and whether
each version lets them in."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import jwt

from patterns.errors import AuthenticationError
from patterns.security import TokenType
from pitfalls._evidence import Evidence
from pitfalls._runner import Backends
from pitfalls.pf005_token_without_expiry import right, wrong

USER_ID = 7
CASES = [  # (token kind, age when presented)
    (TokenType.ACCESS, timedelta(seconds=5)),
    (TokenType.ACCESS, timedelta(minutes=31)),
    (TokenType.ACCESS, timedelta(days=400)),
    (TokenType.REFRESH, timedelta(seconds=5)),
    (TokenType.REFRESH, timedelta(days=8)),
]


@dataclass(frozen=True)
class Presented:
    kind: TokenType
    age: timedelta
    wrong: str  # "accepted" or the refusal code
    right: str


def _age(age: timedelta) -> str:
    if age >= timedelta(days=1):
        return f"{age.days} days"
    if age >= timedelta(minutes=1):
        return f"{age.seconds // 60} min"
    return f"{age.seconds} s"


def attempts() -> list[Presented]:
    secret = secrets.token_urlsafe(32)
    service = right.tokens(secret)
    now = datetime.now(UTC)
    out = []
    for kind, age in CASES:
        # The wrong token holds no time at all: one issued `age` ago is this very string.
        w_token = wrong.create_token(secret, USER_ID)
        try:
            w = f"accepted (user {wrong.current_user_id(secret, w_token)})"
        except jwt.PyJWTError as exc:
            w = f"refused: {type(exc).__name__}"
        r_token = right.create_token(service, USER_ID, kind, now=now - age)
        try:
            r = f"accepted (user {right.current_user_id(service, r_token)})"
        except AuthenticationError as exc:
            r = f"refused: {exc.error_code}"
        out.append(Presented(kind, age, w, r))
    return out


def _should_pass(p: Presented) -> bool:
    return p.kind is TokenType.ACCESS and p.age < timedelta(minutes=30)


async def run(backends: Backends) -> Evidence:
    made = attempts()
    rows: list[list[object]] = [
        [f"{p.kind.value} token", _age(p.age), p.wrong, p.right] for p in made
    ]
    wrong_bad = [p for p in made if not _should_pass(p) and p.wrong.startswith("accepted")]
    right_ok = all(p.right.startswith("accepted") == _should_pass(p) for p in made)
    return Evidence(
        columns=["presented as access token", "issued ago", "wrong", "right"],
        rows=rows,
        shown=bool(wrong_bad) and right_ok,
        verdict=(
            f"wrong accepted {len(wrong_bad)} tokens that should be dead or are not access "
            "tokens (one issued 400 days ago); right accepted only the fresh access token."
        ),
        notes=[
            "The wrong token carries no time: issued today or 400 days ago, it is the same "
            "string, and it stays valid until the signing secret is rotated for everyone."
        ],
    )
