"""Password hashing as an upgradable policy (guide: "JWT Authentication", "Password Security").

The guide uses passlib's `CryptContext(schemes=["bcrypt"])`, which raises on bcrypt 5 (passlib is
unmaintained). pwdlib hashes with argon2id at OWASP's parameters and still verifies bcrypt hashes,
flagging them for a rehash at the next login. Hashing runs in a worker thread: argon2 takes tens
of milliseconds of CPU that must not block the event loop.
"""

from __future__ import annotations

import asyncio

from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher
from pwdlib.hashers.bcrypt import BcryptHasher

# OWASP Password Storage Cheat Sheet, argon2id: m=19 MiB, t=2, p=1 is the minimum configuration.
OWASP_MEMORY_KIB = 19 * 1024
OWASP_TIME_COST = 2
OWASP_PARALLELISM = 1


class PasswordHasher:
    """argon2id for new hashes; bcrypt accepted for old ones and upgraded on login."""

    def __init__(
        self,
        *,
        memory_cost: int = OWASP_MEMORY_KIB,
        time_cost: int = OWASP_TIME_COST,
        parallelism: int = OWASP_PARALLELISM,
    ) -> None:
        if memory_cost < OWASP_MEMORY_KIB or time_cost < OWASP_TIME_COST:
            raise ValueError("argon2id parameters below OWASP's minimum (m=19 MiB, t=2)")
        self._hash = PasswordHash(
            (
                Argon2Hasher(time_cost=time_cost, memory_cost=memory_cost, parallelism=parallelism),
                BcryptHasher(),
            )
        )
        # Verified against when the email is unknown, so both paths cost one argon2 verify.
        self._dummy = self._hash.hash("dummy-password-for-timing-equalisation")

    def hash(self, password: str) -> str:
        return self._hash.hash(password)

    def verify_and_update(self, password: str, hashed: str | None) -> tuple[bool, str | None]:
        """(valid, new_hash): new_hash is set when the stored hash uses an outdated scheme or
        parameters. `hashed=None` (unknown user) verifies against a dummy and returns False."""
        if hashed is None:
            self._hash.verify(password, self._dummy)
            return False, None
        try:
            return self._hash.verify_and_update(password, hashed)
        except Exception:  # an unrecognised or corrupt stored hash is a failed login, not a 500
            return False, None

    async def hash_async(self, password: str) -> str:
        return await asyncio.to_thread(self.hash, password)

    async def verify_and_update_async(
        self, password: str, hashed: str | None
    ) -> tuple[bool, str | None]:
        return await asyncio.to_thread(self.verify_and_update, password, hashed)
