"""User schemas (guide: "Type Safety"): create with a minimum password length, update, and a
response that carries no secrets."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from email_validator import EmailNotValidError, validate_email
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    StrictBool,
    StringConstraints,
    TypeAdapter,
    ValidationError,
    WithJsonSchema,
)
from pydantic.config import JsonDict

from patterns.validation import NoNul
from reference_app.models.user import STAFF_ROLES, Role

PASSWORD_MIN_LENGTH = 8
# Bounded: argon2 cost grows with input, and bcrypt (legacy hashes) refuses more than 72 bytes.
PASSWORD_MAX_LENGTH = 128

EMAIL_MAX_LENGTH = 320


def _email(value: str) -> str:
    # email-validator's syntax rules (as pydantic's EmailStr), plus the names RFC 6761 reserves
    # for testing (`a@b.test`): the schema's `format: email` allows them (docs: Decisions).
    try:
        address = validate_email(value.strip(), check_deliverability=False, test_environment=True)
    except EmailNotValidError as exc:
        raise ValueError(f"value is not a valid email address: {exc}") from None
    return address.normalized.lower()


Email = Annotated[
    str,
    StringConstraints(max_length=EMAIL_MAX_LENGTH),
    AfterValidator(_email),
    WithJsonSchema({"type": "string", "format": "email", "maxLength": EMAIL_MAX_LENGTH}),
]
"""Emails are compared and stored lower-cased (the unique index is then case-insensitive)."""
_EMAIL = TypeAdapter(Email)


def normalize_email(value: str) -> str:
    """An email in the form it is stored in, for looking one up (login): what `Email` makes of
    it (trimmed, IDNA domain, lower-cased), so whatever registration accepted finds its user.
    A value `Email` refuses is only trimmed and lower-cased: such a login finds no user, except
    a first admin configured with an address like `admin@localhost`, stored the same way."""
    try:
        return _EMAIL.validate_python(value)
    except ValidationError:
        return value.strip().lower()


Password = Annotated[
    str, StringConstraints(min_length=PASSWORD_MIN_LENGTH, max_length=PASSWORD_MAX_LENGTH)
]
FullName = Annotated[str, StringConstraints(strip_whitespace=True, max_length=200), NoNul]


class UserBase(BaseModel):
    email: Email
    full_name: FullName | None = None


class UserRegister(UserBase):
    """Self-service sign-up: always an active user with the `user` role."""

    model_config = ConfigDict(extra="forbid")
    password: Password


class UserCreate(UserRegister):
    """An admin creating an account may pick its role and state."""

    role: Role = Role.USER
    is_active: StrictBool = True


# A new password needs the current one: JSON Schema says it with if/then (a 422 otherwise).
_NEW_PASSWORD_NEEDS_CURRENT: JsonDict = {
    "if": {"properties": {"password": {"type": "string"}}, "required": ["password"]},
    "then": {
        "properties": {"current_password": {"type": "string"}},
        "required": ["current_password"],
    },
}


class UserUpdateMe(BaseModel):
    """What users may change about themselves; a new password needs the current one."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=_NEW_PASSWORD_NEEDS_CURRENT)
    full_name: FullName | None = None
    password: Password | None = None
    current_password: Annotated[str, StringConstraints(max_length=PASSWORD_MAX_LENGTH)] | None = (
        None
    )


class UserResponse(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    email: str
    full_name: str | None
    is_active: bool
    role: Role
    created_at: datetime
    updated_at: datetime


class Principal(UserResponse):
    """The authenticated user as the API sees them on a request: a snapshot of the user's row
    (cached briefly in Redis, `patterns.security.principals`), not an ORM object. Endpoints
    that change the user's row load it (`CurrentUserRecord`)."""

    model_config = ConfigDict(from_attributes=True, frozen=True)

    # Required, not defaulted: a snapshot cached before the field existed fails to parse and is
    # read again from the database, instead of passing as version 0.
    credentials_version: int

    @property
    def roles(self) -> frozenset[Role]:
        """The guide checks `role in current_user.roles`; one role per user here."""
        return frozenset({self.role})

    @property
    def is_staff(self) -> bool:
        """A manager or an admin: may change any item and read any order."""
        return self.role in STAFF_ROLES


class UserAdminUpdate(BaseModel):
    """What an admin may change about another account: its state and its role."""

    model_config = ConfigDict(extra="forbid")
    is_active: StrictBool | None = None
    role: Role | None = None
