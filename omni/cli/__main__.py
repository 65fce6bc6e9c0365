"""`python -m omni.cli ...`: the same as `omni ...`."""

import sys

from omni.cli import main

sys.exit(main())
