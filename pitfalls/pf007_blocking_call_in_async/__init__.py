"""PF007 A blocking sync database call inside `async def` (guide: "Dependency Injection": the
guide's sync `Session` used by `async def` endpoints)."""

from pitfalls._evidence import POSTGRESQL, Pitfall

PITFALL = Pitfall(
    id="PF007",
    title="Blocking sync database call inside async def",
    summary="A sync driver call in async def stalls the event loop: requests run one at a time.",
    guide="API Design › Dependency Injection (a sync Session in async endpoints)",
    needs=frozenset({POSTGRESQL}),
)
