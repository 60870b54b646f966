"""User data access (guide: "CRUD Operations", "User Management Flow")."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from patterns.errors import ConflictError
from patterns.security import PasswordHasher
from reference_app.models.user import Role, User
from reference_app.schemas.user import UserCreate, UserRegister, normalize_email


async def get_by_email(session: AsyncSession, email: str) -> User | None:
    """The user with this email, however it is spaced or cased (as registration normalises)."""
    return await session.scalar(select(User).where(User.email == normalize_email(email)))


async def create(
    session: AsyncSession, user_in: UserRegister | UserCreate, hasher: PasswordHasher
) -> User:
    """Insert a user; a duplicate email (in any letter case) is a 409, even under a race."""
    if await get_by_email(session, user_in.email) is not None:
        raise ConflictError("A user with this email already exists.", code="email_taken")
    role = user_in.role if isinstance(user_in, UserCreate) else Role.USER
    active = user_in.is_active if isinstance(user_in, UserCreate) else True
    user = User(
        email=user_in.email.lower(),
        full_name=user_in.full_name,
        hashed_password=await hasher.hash_async(user_in.password),
        role=role.value,
        is_active=active,
    )
    session.add(user)
    try:
        await session.flush()
    except IntegrityError:  # a concurrent registration won the unique index
        raise ConflictError("A user with this email already exists.", code="email_taken") from None
    return user


async def authenticate(
    session: AsyncSession, email: str, password: str, hasher: PasswordHasher
) -> User | None:
    """The user if the password matches. Unknown emails cost one argon2 verify too, so timing
    does not reveal which emails exist; outdated hashes are upgraded in place."""
    user = await get_by_email(session, email)
    valid, new_hash = await hasher.verify_and_update_async(
        password, user.hashed_password if user else None
    )
    if not valid or user is None:
        return None
    if new_hash is not None:
        user.hashed_password = new_hash
    return user


async def ensure_admin(
    session: AsyncSession, email: str, password: str, hasher: PasswordHasher
) -> bool:
    """Create an admin if no user has this email; True when created. Safe with several workers
    starting at once (INSERT … ON CONFLICT DO NOTHING)."""
    hashed = await hasher.hash_async(password)
    dialect = session.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    stmt = (
        insert(User)
        .values(
            email=normalize_email(email),
            hashed_password=hashed,
            role=Role.ADMIN.value,
            is_active=True,
        )
        .on_conflict_do_nothing(index_elements=[User.email])
        .returning(User.id)
    )
    created = await session.scalar(stmt)
    return created is not None
