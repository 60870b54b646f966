"""Runnable wrong/right pairs with measured evidence, one package per pitfall (guide: "Common
Pitfalls and Solutions"). IDs are stable: PF001 stays "N+1 queries" forever.

`python -m pitfalls list` lists them; `python -m pitfalls run PF001` (or `all`) runs each wrong
and right version on the configured backends and prints the evidence.
"""
