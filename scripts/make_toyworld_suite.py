#!/usr/bin/env python
"""Write suites/toyworld.yaml (`omni.toyworld.suites.toyworld_suite`): toy-world scenes as benchmark items,
their canonical captions as prompts and the scenes themselves as ground truth.

    python scripts/make_toyworld_suite.py [--count 24] [--seed 0] [--out suites/toyworld.yaml]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from omni.toyworld.suites import write_toyworld_suite

if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--count", type=int, default=24)
    parser.add_argument("--seed", type=int, default=0)
    default_out = Path(__file__).resolve().parents[1] / "suites" / "toyworld.yaml"
    parser.add_argument("--out", type=Path, default=default_out)
    args = parser.parse_args()
    write_toyworld_suite(args.out, args.count, args.seed)
    print(f"wrote {args.out} ({args.count} items)")
