"""`python -m learn`: see learn.cli."""

from learn.cli import main

raise SystemExit(main())
