"""PF006 Plain-text or fast-hash passwords (guide: "Common Pitfalls and Solutions" › "Password
Security")."""
