"""The guide's user CRUD tests ("Testing Database Operations", `tests/crud/test_user.py`) on the
kit's `reference_app.crud.user` and the account flows that write through it, in the harness's
rolled-back transaction."""

from __future__ import annotations

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from patterns.errors import ConflictError
from patterns.security import PasswordHasher
from reference_app.crud.user import users
from reference_app.schemas.user import UserRegister
from reference_app.services.auth import create_account
from reference_app.services.users import ensure_admin

pytestmark = pytest.mark.integration


async def test_create_user_flushes_a_lowercased_email_and_an_argon2_hash(
    db_session: AsyncSession,
) -> None:
    hasher = PasswordHasher()
    user_in = UserRegister(email="Test@Example.com", password="testpass123")
    user = await create_account(db_session, hasher, user_in)
    assert user.id is not None  # flushed: the id is there, the commit is the caller's
    assert user.email == "test@example.com"
    assert user.hashed_password.startswith("$argon2id$")
    assert (await hasher.verify_and_update_async("testpass123", user.hashed_password))[0]


async def test_get_user_by_email_finds_it_in_any_letter_case(db_session: AsyncSession) -> None:
    hasher = PasswordHasher()
    user = await create_account(
        db_session, hasher, UserRegister(email="found@example.com", password="testpass123")
    )
    found = await users.get_by_email(db_session, "FOUND@example.com")
    assert found is not None
    assert found.id == user.id
    assert await users.get_by_email(db_session, "missing@example.com") is None


async def test_creating_a_second_user_with_the_same_email_is_a_conflict(
    db_session: AsyncSession,
) -> None:
    hasher = PasswordHasher()
    await create_account(db_session, hasher, UserRegister(email="a@example.com", password="x" * 8))
    with pytest.raises(ConflictError):
        await create_account(
            db_session, hasher, UserRegister(email="A@example.com", password="y" * 8)
        )


async def test_get_by_email_normalises_as_registration_does(db_session: AsyncSession) -> None:
    user = await create_account(
        db_session, PasswordHasher(), UserRegister(email="  Spaced@Example.com ", password="x" * 8)
    )
    assert user.email == "spaced@example.com"
    found = await users.get_by_email(db_session, "\tSPACED@example.COM \n")
    assert found is not None
    assert found.id == user.id


@pytest.mark.parametrize(
    ("configured", "stored"),
    [(" Admin@Example.com ", "admin@example.com"), ("Root@LOCALHOST", "root@localhost")],
    ids=["an-email", "not-an-email"],
)
async def test_the_first_admin_is_stored_and_found_by_the_same_normaliser(
    db_session: AsyncSession, configured: str, stored: str
) -> None:
    """The first admin's address comes from settings, unvalidated; an address `Email` refuses
    (`root@localhost`) is still stored in a form a login with it finds."""
    assert await ensure_admin(db_session, PasswordHasher(), configured, "x" * 8)
    found = await users.get_by_email(db_session, configured)
    assert found is not None
    assert found.email == stored
