#!/usr/bin/env python
"""Write the input files suites/workflows.yaml refers to, rendered from the toy world (not kept in git):
key_frame.png, beat.wav and silent_bounce.mp4 (`omni.toyworld.suites.make_suite_inputs`).

    python scripts/make_suite_inputs.py [--out suites/inputs]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from omni.toyworld.suites import make_suite_inputs

if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "suites" / "inputs")
    for path in make_suite_inputs(parser.parse_args().out):
        print(f"wrote {path}")
