"""`python -m pipeline.demo`: see pipeline.demo.run."""

import sys

from pipeline.demo.run import main

sys.exit(main())
