"""Learn the stack: small exercises, each checked on real PostgreSQL and Redis until it passes.

`nox -s learn` (or `python -m learn`) shows the next unsolved exercise; see docs/learn.md. The
exercises use `patterns` and their own small schema (`learn.models`), not the reference app's
internals.
"""
