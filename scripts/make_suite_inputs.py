#!/usr/bin/env python
"""Write the input files suites/workflows.yaml refers to, rendered from the toy world (not kept in git).

    python scripts/make_suite_inputs.py [--out suites/inputs]

key_frame.png      first frame of a blue square about to bounce up and down (image-to-video)
beat.wav           the beeps of a fast up-down bounce: a regular beat to drive a video (audio-to-video)
silent_bounce.mp4  a red ball bouncing left and right, without sound (video-to-audio)
"""

from __future__ import annotations

import argparse
from pathlib import Path

from omni.data.toyworld import ObjectSpec, SceneSpec, render
from omni.media import write_mp4, write_png, write_wav

# A small ball (radius 6) travels 52 px between the walls of a 64 px room: at 104 px/s it hits a wall every
# 0.5 s, from 0.25 s on: a 120 BPM beat.
BEAT_SCENE = SceneSpec(
    objects=(
        ObjectSpec("circle", "yellow", "small", "vertical", position=(32.0, 32.0), velocity=(0.0, 104.0)),
    ),
    room="sand",
)
KEY_FRAME_SCENE = SceneSpec(
    objects=(ObjectSpec("square", "blue", "large", "vertical", position=(32.0, 32.0), velocity=(0.0, 60.0)),),
    room="grey",
)
SILENT_SCENE = SceneSpec(
    objects=(
        ObjectSpec("circle", "red", "small", "horizontal", position=(20.0, 32.0), velocity=(75.0, 0.0)),
    ),
    room="grey",
)


def make_inputs(out: Path) -> list[Path]:
    """Render the three inputs into `out` (created if needed); return their paths."""
    out.mkdir(parents=True, exist_ok=True)
    key, beat, silent = render(KEY_FRAME_SCENE), render(BEAT_SCENE), render(SILENT_SCENE)
    paths = [out / "key_frame.png", out / "beat.wav", out / "silent_bounce.mp4"]
    write_png(paths[0], key.frames[0])
    write_wav(paths[1], beat.audio, beat.sample_rate)
    write_mp4(paths[2], silent.frames, silent.fps)
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "suites" / "inputs")
    for path in make_inputs(parser.parse_args().out):
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
