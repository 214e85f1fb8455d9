"""`python -m app` runs the `gmvit` command line (the console script's twin)."""

import sys

from app.cli import main

sys.exit(main())
