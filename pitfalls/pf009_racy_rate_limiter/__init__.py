"""PF009 A racy rate limiter (guide: "Caching & Performance" › "Rate Limiting")."""
