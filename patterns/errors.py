"""One error envelope for every failure: the guide's "Custom Exceptions" and "Error Middleware".

The guide catches its `AppException` in an HTTP middleware; that misses FastAPI's own
`HTTPException` and validation errors, and a middleware cannot see exceptions raised inside
dependencies with `yield`. Registered exception handlers see all of them, so every error a client
can provoke leaves in the same shape::

    {"error": {"code": "...", "message": "...", "request_id": "...", "details": [...]}}
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from http import HTTPStatus
from typing import Any, ClassVar

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from sqlalchemy import exc as sa_exc
from sqlalchemy.orm.exc import StaleDataError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from patterns.observability.request_id import get_request_id

logger = logging.getLogger("patterns.errors")

RETRY_AFTER_S = 1  # a 503's Retry-After: outages here are restarts and failovers, retry soon


class ErrorBody(BaseModel):
    """The inside of the envelope."""

    code: str
    message: str
    request_id: str | None = None
    details: list[dict[str, Any]] | None = None


class ErrorEnvelope(BaseModel):
    """What every non-2xx response carries; used in OpenAPI `responses=`."""

    error: ErrorBody


# One machine-readable code per status: the default of the kit's exceptions, and the code of
# the HTTPExceptions FastAPI and Starlette raise.
_STATUS_CODES: dict[int, str] = {
    400: "bad_request",
    401: "not_authenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "rate_limited",
    503: "service_unavailable",
}


class AppError(Exception):
    """Base of the kit's exceptions: each subclass carries its own status and code.

    A subclass states them in its class line, `class GoneError(AppError, status=410,
    code="gone", message="Gone.")` (`code` defaults to the status's in `_STATUS_CODES`; optional
    `headers` go on every response), or sets the class attributes below itself.
    """

    status_code: ClassVar[int] = 500
    code: ClassVar[str] = "internal_error"
    default_message: ClassVar[str] = "Internal server error."
    default_headers: ClassVar[Mapping[str, str]] = {}  # a subclass's, merged under the caller's

    def __init_subclass__(
        cls,
        *,
        status: int | None = None,
        code: str | None = None,
        message: str | None = None,
        headers: Mapping[str, str] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init_subclass__(**kwargs)
        if status is not None:
            cls.status_code = status
            cls.code = code or _STATUS_CODES[status]  # a status not listed needs a `code`
        elif code is not None:
            cls.code = code
        if message is not None:
            cls.default_message = message
        if headers is not None:
            cls.default_headers = headers

    def __init__(
        self,
        message: str | None = None,
        *,
        code: str | None = None,
        details: Sequence[Mapping[str, Any]] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.message = message or self.default_message
        self.error_code = code or self.code
        self.details = [dict(d) for d in details] if details is not None else None
        self.headers = {**self.default_headers, **(headers or {})} or None
        super().__init__(self.message)


class BadRequestError(AppError, status=400, message="The request could not be processed."):
    """A request the server cannot act on as sent."""


class ValidationFailedError(AppError, status=422, message="The request failed validation."):
    """Input that passed the schema but breaks a rule only the server can check."""


class AuthenticationError(AppError, status=401, message="Could not validate credentials."):
    """401: who you are is unknown (no, bad, expired or revoked credentials)."""

    def __init__(self, message: str | None = None, **kwargs: Any) -> None:
        kwargs.setdefault("headers", {"WWW-Authenticate": "Bearer"})
        super().__init__(message, **kwargs)


class PermissionDeniedError(AppError, status=403, message="You do not have permission to do this."):
    """403: who you are is known, and it is not enough."""


class NotFoundError(AppError, status=404, message="Not found."):
    """No such resource (or none the caller may know of)."""


class ConflictError(AppError, status=409, message="The request conflicts with the current state."):
    """The request clashes with what is stored (a duplicate, a state that no longer allows it)."""


class BusinessRuleError(
    AppError,
    status=409,
    code="business_rule_violated",
    message="The request breaks a business rule.",
):
    """A well-formed request the domain refuses (the guide's `BusinessException`)."""


class RateLimitedError(AppError, status=429, message="Too many requests."):
    """Over a rate limit; `Retry-After` says when to try again."""


class ServiceUnavailableError(
    AppError,
    status=503,
    message="A service this request needs is unavailable.",
    headers={"Retry-After": str(RETRY_AFTER_S)},
):
    """Raised where the kit chose to fail closed; says when to retry, as the outage handler does."""


def error_response(
    status_code: int,
    code: str,
    message: str,
    *,
    details: list[dict[str, Any]] | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    """Render the envelope; the request id comes from the request-id middleware's context."""
    request_id = get_request_id()
    body = ErrorBody(code=code, message=message, request_id=request_id, details=details)
    out_headers = dict(headers) if headers else {}
    if request_id:
        # Also set here: a 500 is rendered outside the request-id middleware.
        out_headers.setdefault("X-Request-ID", request_id)
    return JSONResponse(
        {"error": body.model_dump(exclude_none=True)},
        status_code=status_code,
        headers=out_headers or None,
    )


def _validation_details(exc: RequestValidationError) -> list[dict[str, Any]]:
    """Keep only location, message and type: pydantic's `input` and `ctx` may hold secrets
    (a password that was too short) or objects JSON cannot encode (a ValueError)."""
    out: list[dict[str, Any]] = []
    for err in exc.errors():
        loc = [p if isinstance(p, int) else str(p) for p in err.get("loc", ())]
        out.append({"loc": loc, "msg": str(err.get("msg", "")), "type": str(err.get("type", ""))})
    return out


async def _app_error_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, AppError)
    return error_response(
        exc.status_code, exc.error_code, exc.message, details=exc.details, headers=exc.headers
    )


_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE")


def allowed_methods(request: Request) -> list[str]:
    """Every method some route of the app serves on this request's path.

    Starlette's 405 names the methods of the first route whose path matched; a path served by
    several routes (`GET` and `POST /items`, each its own route) needs all of them in `Allow`.
    Each method is asked of the app's routes as the router would (nested routers included), on
    a copy of the scope, so nothing of the request's own scope changes.
    """
    allowed = []
    for method in _METHODS:
        probe = {k: dict(v) if isinstance(v, dict) else v for k, v in request.scope.items()}
        probe["method"] = method
        if any(route.matches(probe)[0] is Match.FULL for route in request.app.router.routes):
            allowed.append(method)
    return allowed


async def _http_exception_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    status = exc.status_code
    code = _STATUS_CODES.get(status, "http_error" if status < 500 else "internal_error")
    message = exc.detail if isinstance(exc.detail, str) else HTTPStatus(status).phrase
    headers = dict(exc.headers or {})
    if status == 405:
        # Raised by the router before any dependency (so before authentication) runs.
        headers["Allow"] = ", ".join(allowed_methods(request)) or headers.get("Allow", "")
    return error_response(status, code, message, headers=headers or None)


async def _validation_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    return error_response(
        422, "validation_error", "The request is not valid.", details=_validation_details(exc)
    )


async def _unhandled_handler(request: Request, exc: Exception) -> JSONResponse:
    # Starlette's ServerErrorMiddleware calls this, then re-raises; the observability middleware
    # has logged the traceback once. The client sees a generic message and the request id, never
    # internals.
    return error_response(500, "internal_error", "Internal server error.")


# A backing service went away mid-request: the database connection dropped or was refused, the
# pool had no connection to give within its timeout, or Redis did not answer. Nothing was
# committed (the session dependency rolled back), so the client may retry: 503, not 500.
_UNAVAILABLE: tuple[type[Exception], ...] = (
    sa_exc.DBAPIError,  # `is_unavailable` tells an outage from a failed statement (a 500)
    sa_exc.TimeoutError,
    RedisConnectionError,
    RedisTimeoutError,
    ConnectionError,  # refused or reset before a driver could wrap it
    TimeoutError,  # asyncpg's connect timeout
)


def is_unavailable(exc: BaseException) -> bool:
    """Whether `exc` means a backing service is gone (retry later), not that the work is wrong.

    A database error counts when the connection was lost or refused (patterns.db marks those as
    disconnects) or the driver calls it operational; a failed statement does not.
    """
    if isinstance(exc, sa_exc.DBAPIError):
        return exc.connection_invalidated or isinstance(
            exc, sa_exc.OperationalError | sa_exc.InterfaceError
        )
    return isinstance(exc, _UNAVAILABLE)


# The database gave up on this transaction because of a concurrent one (a deadlock it broke, a
# serialization failure), or a row the ORM was updating vanished meanwhile: nothing was
# committed and the same request may well succeed now, so 409 with the reason, not a 500.
_WRITE_CONFLICT_STATES = frozenset({"40001", "40P01"})


def is_write_conflict(exc: BaseException) -> bool:
    """Whether `exc` means this transaction lost to a concurrent one (retry), not a bug."""
    if isinstance(exc, StaleDataError):
        return True
    return (
        isinstance(exc, sa_exc.DBAPIError)
        and getattr(exc.orig, "sqlstate", None) in _WRITE_CONFLICT_STATES
    )


async def _unavailable_handler(request: Request, exc: Exception) -> JSONResponse:
    if is_write_conflict(exc):
        logger.warning("write conflict: %s", type(exc).__name__, exc_info=exc)
        return error_response(
            409,
            "write_conflict",
            "A concurrent request changed the same data; nothing was changed. Retry.",
        )
    if not is_unavailable(exc):
        return await _unhandled_handler(request, exc)
    logger.warning("backing service unavailable: %s", type(exc).__name__, exc_info=exc)
    return error_response(
        503,
        "service_unavailable",
        "A service this request needs is unavailable; nothing was changed. Retry shortly.",
        headers={"Retry-After": str(RETRY_AFTER_S)},
    )


def install_error_handlers(app: FastAPI) -> None:
    """Register the handlers that render every error in the envelope, and document in OpenAPI
    the one error FastAPI raises by itself on any route with a body (see `_document_bad_body`)."""
    app.add_exception_handler(AppError, _app_error_handler)
    for exc_type in (*_UNAVAILABLE, StaleDataError):
        app.add_exception_handler(exc_type, _unavailable_handler)
    app.add_exception_handler(StarletteHTTPException, _http_exception_handler)
    app.add_exception_handler(RequestValidationError, _validation_handler)
    app.add_exception_handler(Exception, _unhandled_handler)
    _document_bad_body(app)


def _envelope_ref(schema: dict[str, Any]) -> str:
    """The `$ref` of ErrorEnvelope in this OpenAPI document, added when no route declared it."""
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    for name, component in components.items():
        if component.get("title") == ErrorEnvelope.__name__:
            return f"#/components/schemas/{name}"
    generated = ErrorEnvelope.model_json_schema(ref_template="#/components/schemas/{model}")
    components.update(generated.pop("$defs", {}))
    components[ErrorEnvelope.__name__] = generated
    return f"#/components/schemas/{ErrorEnvelope.__name__}"


def _document_bad_body(app: FastAPI) -> None:
    """Declare 400 on every operation that takes a request body.

    FastAPI answers 400 ("There was an error parsing the body", rendered in the envelope by
    `_http_exception_handler`) before any route code runs when a body cannot be decoded at all:
    bytes that are not UTF-8, JSON nested deeper than the parser's recursion limit, broken
    multipart. (Merely malformed JSON is a 422.) No route can list that in its own `responses=`
    without every route having to remember it, so it is added to the generated document, which
    then describes every status a client can get.
    """
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = generate()
        ref = _envelope_ref(schema)
        bad_body = {
            "description": "The body could not be decoded.",
            "content": {"application/json": {"schema": {"$ref": ref}}},
        }
        for path_item in schema.get("paths", {}).values():
            for operation in path_item.values():
                if isinstance(operation, dict) and "requestBody" in operation:
                    operation.setdefault("responses", {}).setdefault("400", bad_body)
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses=` entries so the schema documents every error shape a route returns."""
    return {s: {"model": ErrorEnvelope, "description": HTTPStatus(s).phrase} for s in statuses}
