"""PF006 Plain-text or fast-hash passwords (guide: "Common Pitfalls and Solutions" › "Password
Security")."""

from pitfalls._evidence import Pitfall

PITFALL = Pitfall(
    id="PF006",
    title="Plain-text or fast-hash passwords",
    summary="Passwords stored as text or unsalted MD5/SHA-1: a database dump gives them all away.",
    guide="Authentication Pitfalls › Password Security",
)
