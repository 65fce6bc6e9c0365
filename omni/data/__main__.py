"""`python -m omni.data prepare ...`."""

import sys

from omni.data.cli import main

sys.exit(main())
