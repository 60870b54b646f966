"""PF007 A blocking sync database call inside `async def` (guide: "Dependency Injection": the
guide's sync `Session` used by `async def` endpoints)."""
