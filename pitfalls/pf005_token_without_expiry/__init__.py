"""PF005 Token without expiry or type (guide: "Common Pitfalls and Solutions" › "Token
Management")."""
