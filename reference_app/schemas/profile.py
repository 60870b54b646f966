"""The profile (guide: "User Management Flow"): the user, recent activity and preferences."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, StrictBool

from reference_app.schemas.user import UserResponse


class ActivityResponse(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    kind: str
    detail: str | None
    created_at: datetime


class PreferencesResponse(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    theme: str = "light"
    language: str = "en"
    email_notifications: bool = True


class PreferencesUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    theme: Literal["light", "dark", "system"] | None = None
    language: Literal["en", "de", "fr", "es", "it", "nl", "pt"] | None = None
    email_notifications: StrictBool | None = None


class ProfileResponse(BaseModel):
    user: UserResponse
    recent_activity: list[ActivityResponse]
    preferences: PreferencesResponse
