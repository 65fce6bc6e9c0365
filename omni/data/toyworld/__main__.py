"""`python -m omni.data.toyworld render --seed S --count N --out DIR`."""

from omni.data.toyworld.cli import main

raise SystemExit(main())
