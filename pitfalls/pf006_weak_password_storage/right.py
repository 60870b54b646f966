"""PF006 right: the kit's `PasswordHasher`: argon2id at OWASP's parameters, a fresh salt per
hash, verified in constant time (guide: "Password Security")."""

from __future__ import annotations

from patterns.security import PasswordHasher

hasher = PasswordHasher()


def store(password: str) -> str:
    return hasher.hash(password)  # "$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>"


def verify(password: str, stored: str) -> bool:
    valid, _new_hash = hasher.verify_and_update(password, stored)
    return valid
