"""The role matrix: every protected route × {anonymous, user, manager, admin} (guide:
"Role-Based Access Control"). 401 and 403 are kept apart."""

from __future__ import annotations

from typing import Any

import pytest
from httpx import AsyncClient

from reference_app.models.user import Role
from tests.integration.conftest import AccountFactory

ANON = None
# (method, path, json body, {role: expected status})
ROUTES: list[tuple[str, str, dict[str, Any] | None, dict[Role | None, int]]] = [
    (
        "GET",
        "/api/v1/users/me",
        None,
        {ANON: 401, Role.USER: 200, Role.MANAGER: 200, Role.ADMIN: 200},
    ),
    (
        "PATCH",
        "/api/v1/users/me",
        {"full_name": "New Name"},
        {ANON: 401, Role.USER: 200, Role.MANAGER: 200, Role.ADMIN: 200},
    ),
    (
        "POST",
        "/api/v1/users/",
        {"email": "created@example.com", "password": "password-123"},
        {ANON: 401, Role.USER: 403, Role.MANAGER: 403, Role.ADMIN: 201},
    ),
    (
        "POST",
        "/api/v1/auth/logout",
        None,
        {ANON: 401, Role.USER: 204, Role.MANAGER: 204, Role.ADMIN: 204},
    ),
    (
        "GET",
        "/api/v1/admin/users",
        None,
        {ANON: 401, Role.USER: 403, Role.MANAGER: 403, Role.ADMIN: 200},
    ),
    (
        "PATCH",
        "/api/v1/admin/users/2147483647",
        {"is_active": True},
        {ANON: 401, Role.USER: 403, Role.MANAGER: 403, Role.ADMIN: 404},
    ),
    (
        "POST",
        "/api/v1/items",
        {"title": "Lamp", "category": "home", "price": "9.99"},
        {ANON: 401, Role.USER: 201, Role.MANAGER: 201, Role.ADMIN: 201},
    ),
]

CASES = [
    pytest.param(method, path, body, role, expected, id=f"{method} {path} as {role or 'anonymous'}")
    for method, path, body, matrix in ROUTES
    for role, expected in matrix.items()
]


@pytest.mark.parametrize(("method", "path", "body", "role", "expected"), CASES)
async def test_role_matrix(
    client: AsyncClient,
    make_account: AccountFactory,
    method: str,
    path: str,
    body: dict[str, Any] | None,
    role: Role | None,
    expected: int,
) -> None:
    headers = (await make_account(role)).headers if role else {}
    r = await client.request(method, path, json=body, headers=headers)
    assert r.status_code == expected, r.text
    if expected in (401, 403):
        code = r.json()["error"]["code"]
        assert code == ("not_authenticated" if expected == 401 else "forbidden")
