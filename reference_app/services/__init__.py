"""The app's flows, one function each, top to bottom (docs/architecture.md, "Where a flow lives").

An endpoint parses, authorizes, calls one function here and returns its result. The function
names every step, from the first read to the last after-commit effect (a task published, a
cache entry dropped, a user's snapshot forgotten), so a reader finds a flow in one place. Data
access goes through the `crud` modules; nothing here commits: the request's session dependency
does, and runs the after-commit effects registered here only when the commit succeeded.
"""
