"""The exercises: each a package with start.py (what the learner gets), solution.py, check.py
(the pytest tests, run on real PostgreSQL and Redis), hint.md and explanation.md."""
