"""An HTTP client bound to an app and a test's session.

It expunges the session before each request, so the app loads fresh rows instead of reusing the
test's objects; combined with `lazy="raise"` relationships, an accidental lazy load in a request
fails the test instead of hiding an N+1 (the way Polar's test client does it).
"""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.types import ASGIApp


def make_client(
    app: ASGIApp,
    session: AsyncSession | None = None,
    *,
    base_url: str = "http://test",
    raise_app_exceptions: bool = True,
    **kwargs: Any,
) -> httpx.AsyncClient:
    """`raise_app_exceptions=False` returns the 500 response a client would see instead of
    raising the app's exception in the test."""

    async def _expunge(request: httpx.Request) -> None:
        if session is not None:
            session.expunge_all()

    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app, raise_app_exceptions=raise_app_exceptions),
        base_url=base_url,
        event_hooks={"request": [_expunge]},
        **kwargs,
    )
