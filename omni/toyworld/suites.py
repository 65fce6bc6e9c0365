"""Benchmark suites from the toy world: suites/toyworld.yaml (scenes as items, their canonical captions as
prompts, the scenes themselves as ground truth) and the input files suites/workflows.yaml refers to."""

from __future__ import annotations

from pathlib import Path

import yaml

from omni.media import write_mp4, write_png, write_wav
from omni.toyworld.captions import canonical_caption
from omni.toyworld.clip import render
from omni.toyworld.sampling import SAMPLED_MOTIONS, sample_scene
from omni.toyworld.spec import COLORS, SHAPES, ObjectSpec, SceneSpec


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


def write_toyworld_suite(out: Path, count: int, seed: int) -> None:
    """Write `toyworld_suite(count, seed)` as YAML, headed by the command that wrote it."""
    header = f"# Written by `python scripts/make_toyworld_suite.py --count {count} --seed {seed}`.\n"
    text = yaml.safe_dump(toyworld_suite(count, seed), sort_keys=False, default_flow_style=None, width=110)
    Path(out).write_text(header + text, encoding="utf-8")


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


def make_suite_inputs(out: Path) -> list[Path]:
    """Render the inputs of suites/workflows.yaml into `out` (created if needed) and return their paths:
    key_frame.png (a blue square about to bounce up and down, for image-to-video), beat.wav (the beeps of a
    fast up-down bounce, a beat to drive a video) and silent_bounce.mp4 (a red ball bouncing left and right,
    without sound, for video-to-audio)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    key, beat, silent = render(KEY_FRAME_SCENE), render(BEAT_SCENE), render(SILENT_SCENE)
    paths = [out / "key_frame.png", out / "beat.wav", out / "silent_bounce.mp4"]
    write_png(paths[0], key.frames[0])
    write_wav(paths[1], beat.audio, beat.sample_rate)
    write_mp4(paths[2], silent.frames, silent.fps)
    return paths
