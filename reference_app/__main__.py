import sys

from reference_app.cli import main

sys.exit(main())
