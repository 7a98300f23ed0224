"""`python -m pipeline.cli`: the same as the `custody` script."""

import sys

from pipeline.cli.main import main

sys.exit(main())
