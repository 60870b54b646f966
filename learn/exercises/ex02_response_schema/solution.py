"""Exercise 2 — schemas that never leak a secret (guide: "Type Safety").

Input and output are separate models: the output lists the fields a client may see, so a
column added to the table later (a hash, a token) stays out of every response until someone
adds it here on purpose. The input bounds the password: too short is weak, too long makes
hashing it a denial of service.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, EmailStr, Field


class AccountCreate(BaseModel):
    email: EmailStr
    password: str = Field(min_length=8, max_length=128)


class AccountOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    email: EmailStr
    role: str
