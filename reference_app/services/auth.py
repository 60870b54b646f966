"""Registration, login, refresh and logout (guide: "JWT Authentication", "User Management Flow").

Registration is the guide's flow done right: the duplicate email is a 409 in the envelope, the
welcome email goes out as a background task after the commit, and the registrations counter
moves only when the user is committed. Login upgrades an outdated password hash in place;
refresh rotates the refresh token and ends the whole login when a used one comes back.
"""

from __future__ import annotations

from fastapi import BackgroundTasks
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from patterns.db import on_commit
from patterns.errors import AuthenticationError, ConflictError, PermissionDeniedError
from patterns.security import Claims, PasswordHasher, TokenPair, TokenType
from patterns.security.revocation import Rotation
from reference_app.core.cache import user_tag
from reference_app.core.deps import check_credentials_version, user_id_from_subject
from reference_app.core.mail import send_welcome_email
from reference_app.core.metrics import REGISTRATIONS
from reference_app.core.state import AppState
from reference_app.crud.activity import activities
from reference_app.crud.user import users
from reference_app.models.user import Role, User
from reference_app.schemas.user import UserCreate, UserRegister


async def register(
    session: AsyncSession,
    state: AppState,
    user_in: UserRegister,
    *,
    after_response: BackgroundTasks,
) -> User:
    """Create an account as a user registering, then welcome them once it is committed."""
    user = await create_account(session, state.passwords, user_in)
    activities.record(session, user.id, "registered")
    on_commit(session, REGISTRATIONS.inc)
    # After the response, so after the commit: a rolled-back registration sends nothing.
    after_response.add_task(send_welcome_email, state.mailer, user.email, user.full_name)
    return user


async def create_account(
    session: AsyncSession, passwords: PasswordHasher, user_in: UserRegister | UserCreate
) -> User:
    """Insert a user (an admin's `UserCreate` may pick role and state); a duplicate email, in
    any letter case, is a 409, even when two registrations race."""
    if await users.get_by_email(session, user_in.email) is not None:
        raise ConflictError("A user with this email already exists.", code="email_taken")
    role, active = (
        (user_in.role, user_in.is_active) if isinstance(user_in, UserCreate) else (Role.USER, True)
    )
    user = User(
        email=user_in.email.lower(),
        full_name=user_in.full_name,
        hashed_password=await passwords.hash_async(user_in.password),
        role=role.value,
        is_active=active,
    )
    session.add(user)
    try:
        await session.flush()
    except IntegrityError:  # a concurrent registration won the unique index
        raise ConflictError("A user with this email already exists.", code="email_taken") from None
    return user


async def login(session: AsyncSession, state: AppState, email: str, password: str) -> TokenPair:
    """Check the password and issue a token pair (a new login family)."""
    user = await authenticate(session, state, email, password)
    if user is None:
        raise AuthenticationError("Incorrect email or password.", code="invalid_credentials")
    if not user.is_active:
        raise PermissionDeniedError("The user is inactive.", code="user_inactive")
    activities.record(session, user.id, "login")
    state.redis.cache.invalidate_on_commit(session, tags=[user_tag(user.id)])  # a new activity
    return state.tokens.create_pair(user.id, version=user.credentials_version)


async def authenticate(
    session: AsyncSession, state: AppState, email: str, password: str
) -> User | None:
    """The user if the password matches. Unknown emails cost one argon2 verify too, so timing
    does not reveal which emails exist; an outdated hash is upgraded in place (the snapshot
    holds no hash, so it stays valid)."""
    user = await users.get_by_email(session, email)
    valid, new_hash = await state.passwords.verify_and_update_async(
        password, user.hashed_password if user else None
    )
    if not valid or user is None:
        return None
    if new_hash is not None:
        user.hashed_password = new_hash
    return user


async def refresh(session: AsyncSession, state: AppState, refresh_token: str) -> TokenPair:
    """Trade a refresh token for a new pair of the same login's family. The old refresh token
    is used up (rotation): of racing uses exactly one succeeds. A use after the grace window
    (`KIT_AUTH_REFRESH_REUSE_GRACE_S`) is a replay: the token was copied, so every token of the
    family is revoked and the user logs in again. A refresh token issued before the user's
    password changed is refused, so a stolen one dies with the old password."""
    claims = state.tokens.decode(refresh_token, TokenType.REFRESH)
    user = await users.get(session, user_id_from_subject(claims.sub))
    if user is None or not user.is_active:
        raise AuthenticationError("The user is inactive or no longer exists.", code="user_inactive")
    check_credentials_version(claims, user.credentials_version)
    revocations = state.redis.writes  # fails closed: a 503 if Redis is down
    if claims.family is not None and await revocations.is_family_revoked(claims.family):
        raise AuthenticationError("The token has been revoked.", code="token_revoked")
    rotation = await revocations.rotate(
        claims,
        grace_s=state.settings.auth_refresh_reuse_grace_s,
        family_ttl_s=refresh_lifetime_s(state),
    )
    if rotation is Rotation.REPLAYED:
        raise AuthenticationError(
            "This refresh token was already used; every session of this login has been ended.",
            code="refresh_token_reused",
        )
    if rotation is Rotation.RACED:
        raise AuthenticationError("The token has been revoked.", code="token_revoked")
    return state.tokens.create_pair(user.id, version=user.credentials_version, family=claims.family)


async def logout(state: AppState, access: Claims, refresh_token: str | None) -> None:
    """End this login: revoke the access token, the refresh token if given, and every token of
    their family (the login and its rotations) until they would expire. A refresh token that is
    not valid or not the caller's refuses the whole request: nothing is revoked, so a 401 never
    leaves the caller logged out."""
    revoked = [access]
    if refresh_token:
        refresh_claims = state.tokens.decode(refresh_token, TokenType.REFRESH)
        if refresh_claims.sub != access.sub:
            raise AuthenticationError("The refresh token belongs to another user.")
        revoked.append(refresh_claims)
    # The family too: the login's refresh tokens die even if the client did not send them.
    # Fails closed: with Redis down the client must not believe it logged out.
    await state.redis.writes.revoke(*revoked, family_ttl_s=refresh_lifetime_s(state))


def refresh_lifetime_s(state: AppState) -> int:
    return int(state.tokens.ttl[TokenType.REFRESH].total_seconds())
