"""PF006 evidence: four users per storage scheme, a dump of the table, and a dictionary attack on
it: what is read or cracked, and how many guesses per second the scheme allows."""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import select

from patterns.db import session_scope
from pitfalls._evidence import Evidence
from pitfalls._runner import Backends
from pitfalls.pf006_weak_password_storage import right, wrong
from reference_app.models import User

# A small attacker's dictionary: common words, capitalised or not, with common suffixes.
WORDS = """
password dragon monkey shadow master sunshine princess football baseball welcome letmein
qwerty iloveyou trustno1 superman batman starwars freedom whatever michael jennifer
hunter ranger buster soccer harley charlie thomas hockey daniel pepper ginger summer
winter flower cookie orange banana purple silver golden tigger maggie jordan robert
access secret computer internet sparky mustang corvette diamond ferrari
""".split()  # noqa: SIM905 (a word list reads better as text)
SUFFIXES = [
    "",
    "!",
    "1",
    "12",
    "123",
    *map(str, range(1950, 2026)),
    *(f"{i:02d}" for i in range(100)),
]
SUFFIXES += [f"{i:03d}" for i in range(1000)]
PASSWORDS = ["Sunshine1987", "ginger2019", "ginger2019", "Diamond777"]  # two users share one
ARGON2_BUDGET_S = 1.5


def dictionary() -> list[str]:
    return [
        w + s for w, s in itertools.product([*WORDS, *(w.capitalize() for w in WORDS)], SUFFIXES)
    ]


SCHEMES: dict[str, Callable[[str], str]] = {
    "plain text": wrong.store_plain,
    "MD5, unsalted": wrong.store_md5,
    "SHA-1, unsalted": wrong.store_sha1,
    "argon2id, salted (kit)": right.store,
}


@dataclass(frozen=True)
class Attack:
    scheme: str
    sample: str  # the first dumped value
    distinct: int  # distinct stored values for 4 users, two of whom share a password
    cracked: int
    guesses: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.guesses / self.seconds if self.seconds else float("inf")


async def dump(backends: Backends) -> dict[str, list[str]]:
    """Store the users under each scheme, then read the column back as an attacker would."""
    async with session_scope(backends.sessionmaker) as s:
        for n, store in enumerate(SCHEMES.values()):
            s.add_all(
                User(email=f"user{i}-scheme{n}@example.com", hashed_password=store(p))
                for i, p in enumerate(PASSWORDS)
            )
    async with backends.sessionmaker() as s:
        rows = (await s.execute(select(User.email, User.hashed_password).order_by(User.id))).all()
    by_scheme: dict[str, list[str]] = {}
    for n, scheme in enumerate(SCHEMES):
        by_scheme[scheme] = [h for e, h in rows if e.endswith(f"-scheme{n}@example.com")]
    return by_scheme


def attack(scheme: str, stored: list[str], words: list[str]) -> Attack:
    start = time.perf_counter()
    if scheme == "plain text":
        cracked, guesses = len(stored), 0
    elif scheme.startswith("argon2id"):
        # Salted: every guess costs one argon2id verification per user. Try the first user only,
        # for a fixed budget; `cracked` stays 0 unless the word comes up within it.
        cracked = guesses = 0
        for guesses, word in enumerate(words, 1):  # noqa: B007 (read after the loop)
            if right.verify(word, stored[0]):
                cracked = 1
                break
            if time.perf_counter() - start > ARGON2_BUDGET_S:
                break
    else:
        fast = SCHEMES[scheme]
        targets = set(stored)
        found = {fast(w) for w in words} & targets  # one hash per guess covers every user
        cracked = sum(1 for h in stored if h in found)
        guesses = len(words)
    elapsed = time.perf_counter() - start
    return Attack(scheme, stored[0], len(set(stored)), cracked, guesses, elapsed)


def _duration(seconds: float) -> str:
    for unit, size in (("days", 86400), ("hours", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:,.1f} {unit}"
    return f"{seconds:,.2f} s"


async def attacks(backends: Backends) -> list[Attack]:
    dumped = await dump(backends)
    words = dictionary()
    return [attack(scheme, stored, words) for scheme, stored in dumped.items()]


async def run(backends: Backends) -> Evidence:
    results = await attacks(backends)
    size = len(dictionary())
    rows: list[list[object]] = []
    for a in results:
        sample = a.sample if len(a.sample) <= 34 else a.sample[:34] + "…"
        if a.guesses == 0:
            rate, whole = "-", "0 s (read the dump)"
        else:
            rate = f"{a.rate:,.0f}"
            # Salted: the dictionary is tried once per user; unsalted: once for everyone.
            users = len(PASSWORDS) if a.scheme.startswith("argon2id") else 1
            whole = _duration(size * users / a.rate)
        rows.append([a.scheme, sample, f"{a.distinct} of 4", f"{a.cracked} of 4", rate, whole])
    weak, strong = results[:-1], results[-1]
    shown = all(a.cracked == len(PASSWORDS) for a in weak) and strong.cracked == 0
    return Evidence(
        columns=[
            "stored as",
            "first dumped value",
            "distinct values",
            "recovered",
            "guesses/s",
            f"dictionary ({size:,} words), all users",
        ],
        rows=rows,
        shown=shown,
        verdict=(
            f"From the dump, plain text gives every password away and a {size:,}-word dictionary "
            f"cracks every unsalted MD5/SHA-1 hash in {_duration(weak[1].seconds)}; argon2id "
            f"allows {strong.rate:,.0f} guesses/s per user (one Python process, one core)."
        ),
        notes=[
            "Unsalted hashes also show which users share a password (3 distinct values for 4 "
            "users). A GPU computes billions of MD5 hashes per second; argon2id's memory cost "
            "(19 MiB per guess) is what keeps GPUs from doing the same to it."
        ],
    )
