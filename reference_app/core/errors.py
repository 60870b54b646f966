"""The app's own error mapping on top of `patterns.errors` (guide: "Custom Exceptions").

Authenticated requests trust a snapshot of the user for up to `KIT_AUTH_PRINCIPAL_TTL_S`
(`reference_app.core.deps`). A user deleted by hand in SQL within that window still has
a snapshot, and a write on their behalf then breaks a foreign key to `users`: that is the
user being gone (401, as when the snapshot is missed), not a server error.
"""

from __future__ import annotations

import logging
import re

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy.exc import IntegrityError

from patterns.errors import AuthenticationError, error_response

logger = logging.getLogger("reference_app.errors")

# The naming convention's foreign keys to the users table (patterns.db.base).
_USER_FOREIGN_KEY = re.compile(r"^fk_\w+_users$")


def violated_constraint(exc: IntegrityError) -> str | None:
    """The constraint's name as the API's driver (asyncpg) reports it; SQLite names none."""
    orig = exc.orig
    for candidate in (orig, getattr(orig, "__cause__", None)):
        name = getattr(candidate, "constraint_name", None)
        if isinstance(name, str):
            return name
    return None


async def _integrity_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, IntegrityError)
    name = violated_constraint(exc)
    if name is not None and _USER_FOREIGN_KEY.match(name):
        gone = AuthenticationError("The user no longer exists.", code="user_not_found")
        return error_response(gone.status_code, gone.error_code, gone.message, headers=gone.headers)
    # Anything else is a bug: logged with its traceback here (this handler stops it before the
    # observability middleware would), answered as any unexpected error.
    logger.error("unhandled integrity error", exc_info=exc)
    return error_response(500, "internal_error", "Internal server error.")


def install_app_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(IntegrityError, _integrity_handler)
