"""Passwords and tokens (guide: "JWT Authentication", "Authentication Pitfalls")."""

from patterns.security.jwt import Claims, TokenPair, TokenService, TokenType
from patterns.security.passwords import PasswordHasher

__all__ = ["Claims", "PasswordHasher", "TokenPair", "TokenService", "TokenType"]
