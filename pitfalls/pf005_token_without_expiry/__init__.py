"""PF005 Token without expiry or type (guide: "Common Pitfalls and Solutions" › "Token
Management")."""

from pitfalls._evidence import Pitfall

PITFALL = Pitfall(
    id="PF005",
    title="Token without expiry or type",
    summary="No exp, no type: a leaked token works forever, a refresh token works as access.",
    guide="Authentication Pitfalls › Token Management",
)
