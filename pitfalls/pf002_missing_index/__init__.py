"""PF002 Missing index (guide: "Common Pitfalls and Solutions" › "Missing Indexes")."""
