"""PF006 wrong: what ends up in `users.hashed_password` (guide: "Password Security")."""

from __future__ import annotations

import hashlib


def store_plain(password: str) -> str:
    return password  # the guide's `password = Column(String(255))`: a dump is the password list


def store_md5(password: str) -> str:
    # Fast and unsalted: billions of guesses per second on a GPU, equal passwords look equal.
    return hashlib.md5(password.encode()).hexdigest()


def store_sha1(password: str) -> str:
    return hashlib.sha1(password.encode()).hexdigest()  # as fast, and as unsalted
