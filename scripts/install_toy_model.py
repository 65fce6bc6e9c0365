"""Install a trained toy pipeline folder as the built-in model (`omni.toyworld.recipe.install_model`), with
the model card docs/toy-model.md copied in.

    .venv/bin/python scripts/install_toy_model.py ~/.cache/omni/runs/toy/export omni/assets/toy
"""

from __future__ import annotations

import argparse
from pathlib import Path

from omni.toyworld.recipe import install_model

CARD = Path(__file__).resolve().parents[1] / "docs" / "toy-model.md"

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", help="trained pipeline folder (e.g. the trainer's export)")
    parser.add_argument("target", help="where the built-in model lives (omni/assets/toy)")
    args = parser.parse_args()
    try:
        size = install_model(args.source, args.target, CARD)
    except ValueError as error:
        raise SystemExit(f"install_toy_model: {error}") from error
    print(f"installed {args.source} as {args.target} ({size / 2**20:.1f} MB)")
