"""Request ids: accepted from `X-Request-ID` or generated, echoed back, and readable anywhere.

A pure ASGI middleware (not `BaseHTTPMiddleware`) so the context variable it sets is visible to
the endpoint, the exception handlers and the log processors of the same request.
"""

from __future__ import annotations

import re
import secrets
from contextvars import ContextVar

from starlette.types import ASGIApp, Message, Receive, Scope, Send

REQUEST_ID_HEADER = "X-Request-ID"
_request_id: ContextVar[str | None] = ContextVar("request_id", default=None)
# A client-supplied id is echoed into headers and logs: accept only a short, plain token.
_VALID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


def get_request_id() -> str | None:
    """The id of the request being served, or None outside a request."""
    return _request_id.get()


def set_request_id(value: str | None) -> None:
    """Bind an id outside HTTP (a Celery task carrying the id of the request that queued it)."""
    _request_id.set(value)


def new_request_id() -> str:
    """128 random bits as 32 hex digits, the length of a UUID's hex (under half of
    `uuid4().hex`'s cost: no UUID object, no version bits)."""
    return secrets.token_hex(16)


class RequestIdMiddleware:
    """Bind the request id for the request's lifetime and return it in `X-Request-ID`."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = None
        for name, value in scope.get("headers", ()):
            if name == b"x-request-id":
                incoming = value.decode("latin-1")
                break
        rid = incoming if incoming and _VALID.match(incoming) else new_request_id()
        token = _request_id.set(rid)

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                if not any(k.lower() == b"x-request-id" for k, _ in headers):
                    headers.append((b"x-request-id", rid.encode("latin-1")))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_id)
        # Reset only on success: an unhandled exception travels out to Starlette's
        # ServerErrorMiddleware, whose 500 handler still needs the id for the envelope.
        _request_id.reset(token)
