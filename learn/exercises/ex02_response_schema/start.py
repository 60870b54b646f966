"""Exercise 2 — schemas that never leak a secret (guide: "Type Safety").

`POST /accounts` takes an `AccountCreate` and answers with an `AccountOut` built from the stored
row. Today the answer carries the password hash (whatever the
row has, the response has), and any password is accepted. Make `AccountOut`
carry only what a client may see (id, email, role) and make `AccountCreate` refuse a password
shorter than 8 or longer than 128 characters.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, EmailStr


class AccountCreate(BaseModel):
    email: EmailStr
    password: str


class AccountOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    email: EmailStr
    role: str
    hashed_password: str
