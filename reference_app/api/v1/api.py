"""The `/api/v1` router: every endpoint module mounted under one prefix."""

from __future__ import annotations

from fastapi import APIRouter

api_router = APIRouter()
