"""The `/api/v1` router: every endpoint module mounted under one prefix."""

from __future__ import annotations

from fastapi import APIRouter

from reference_app.api.v1.endpoints import admin, auth, items, orders, users

api_router = APIRouter()
api_router.include_router(auth.router)
api_router.include_router(users.router)
api_router.include_router(items.router)
api_router.include_router(orders.router)
api_router.include_router(admin.router)
