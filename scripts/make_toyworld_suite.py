#!/usr/bin/env python
"""Write suites/toyworld.yaml: toy-world scenes as benchmark items, their canonical captions as prompts and
the scenes themselves as ground truth (so `omni bench score` measures colour, shape, motion and beep sync).

    python scripts/make_toyworld_suite.py [--count 24] [--seed 0] [--out suites/toyworld.yaml]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import yaml

from omni.data.toyworld import COLORS, SHAPES, canonical_caption, sample_scene
from omni.data.toyworld.sampling import SAMPLED_MOTIONS


def toyworld_suite(count: int, seed: int) -> dict:
    """The suite as a mapping: scenes cycle through every shape, colour and motion; every 4th has two objects."""
    items = []
    for index in range(count):
        scene = sample_scene(
            seed + index,
            shape=SHAPES[index % len(SHAPES)],
            color=COLORS[index % len(COLORS)],
            motion=SAMPLED_MOTIONS[index % len(SAMPLED_MOTIONS)],
            num_objects=2 if index % 4 == 3 else 1,
            pan=False,
        )
        items.append(
            {
                "id": f"toy_{index:03d}",
                "task": "t2av",
                "prompt": canonical_caption(scene),
                "seed": index,
                "scene": scene.to_dict(),
            }
        )
    return {
        "name": "toyworld",
        "description": "toy-world scenes with ground truth; prompts are their canonical captions",
        "defaults": {"seconds": 33 / 16, "fps": 16, "size": 64},
        "items": items,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--count", type=int, default=24)
    parser.add_argument("--seed", type=int, default=0)
    default_out = Path(__file__).resolve().parents[1] / "suites" / "toyworld.yaml"
    parser.add_argument("--out", type=Path, default=default_out)
    args = parser.parse_args()
    header = (
        f"# Written by `python scripts/make_toyworld_suite.py --count {args.count} --seed {args.seed}`.\n"
    )
    text = yaml.safe_dump(
        toyworld_suite(args.count, args.seed), sort_keys=False, default_flow_style=None, width=110
    )
    args.out.write_text(header + text, encoding="utf-8")
    print(f"wrote {args.out} ({args.count} items)")


if __name__ == "__main__":
    main()
