"""`python -m pitfalls.check PATH...`: the checker alone, standard library only (the pre-commit
hook's entry); the same as `python -m pitfalls check PATH...`."""

import sys

from pitfalls.check.cli import main

sys.exit(main())
