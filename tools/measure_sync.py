#!/usr/bin/env python
"""Print the sync tables of docs/benchmarking.md: `.venv/bin/python tools/measure_sync.py [--clips 16]`."""

# Clips: 65-frame toy-world renders, the middle 33 frames the video, the audio cut from the same render shifted
# by -240 ... +240 ms (positive: audio late); each goes through write_mp4 (H.264 + AAC) and read_video.

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np

from omni.eval.metrics.sync import CONFIDENCE_THRESHOLD, av_sync
from omni.media import read_video, write_mp4
from omni.toyworld import render, sample_scene
from omni.toyworld.sync_windows import FPS, FRAMES, RATE, SHIFTS_MS, bouncing_clips, shifted


def through_mp4(frames: np.ndarray, audio: np.ndarray, folder: Path):
    path = folder / "clip.mp4"
    write_mp4(path, frames, FPS, audio[None], RATE)
    clip = read_video(path)
    return av_sync(clip.frames, clip.fps, clip.audio, clip.sample_rate)


def shift_table(clips: list, folder: Path) -> dict[int, list]:
    return {shift: [through_mp4(*shifted(clip, shift), folder) for clip in clips] for shift in SHIFTS_MS}


def print_shift_table(title: str, table: dict[int, list]) -> None:
    print(f"\n{title}\n")
    print("| shift (ms) | determined | mean recovered (ms) | mean error (ms) | max abs error (ms) |")
    print("| ---: | ---: | ---: | ---: | ---: |")
    errors_all = []
    for shift, estimates in table.items():
        found = [e.offset_ms for e in estimates if e.determined]
        errors = np.array(found) - shift
        errors_all += list(errors)
        if found:
            print(
                f"| {shift:+d} | {len(found)}/{len(estimates)} | {np.mean(found):+.1f} | {errors.mean():+.1f} "
                f"| {np.abs(errors).max():.1f} |"
            )
        else:
            print(f"| {shift:+d} | 0/{len(estimates)} | - | - | - |")
    errors_all = np.abs(errors_all)
    print(f"\nall: median |error| {np.median(errors_all):.1f} ms, max {errors_all.max():.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--clips", type=int, default=16, help="clips per motion class")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp())
    print(f"confidence threshold {CONFIDENCE_THRESHOLD:g}")
    one_axis = bouncing_clips(("horizontal", "vertical"), args.clips)
    diagonal = bouncing_clips(("diagonal",), args.clips)
    one_axis_table = shift_table(one_axis, folder)
    # The test's clips are the first four of these (the same seeds, counted up from 0).
    print_shift_table(
        "test clips (tests/eval/test_metrics_sync.py)", {s: v[:4] for s, v in one_axis_table.items()}
    )
    print_shift_table(f"{args.clips} left-right / up-down clips", one_axis_table)
    print_shift_table(f"{args.clips} diagonal clips", shift_table(diagonal, folder))

    quiet = [
        render(
            sample_scene(
                2000 + i, num_objects=1, motion="orbit", num_frames=65, ambient=("hum", "noise")[i % 2]
            )
        )
        for i in range(args.clips)
    ]
    unshifted = [shifted(c, 0) for c in one_axis + diagonal]  # (frames, audio) per clip
    tone = [shifted(q, 0)[1] for q in quiet * 2]
    nulls = {
        "still picture, beeps": [
            through_mp4(np.repeat(frames[:1], FRAMES, axis=0), audio, folder) for frames, audio in unshifted
        ],
        "moving picture, silence": [
            through_mp4(frames, np.zeros_like(audio), folder) for frames, audio in unshifted
        ],
        "moving picture, room tone only": [
            through_mp4(frames, room, folder) for (frames, _), room in zip(unshifted, tone)
        ],
        "picture and beeps of different clips": [
            through_mp4(frames, unshifted[(i + 5) % len(unshifted)][1], folder)
            for i, (frames, _) in enumerate(unshifted)
        ],
    }
    from omni.pipelines.loading import load_model

    noise = load_model(preset="tiny", device="cpu").pipeline  # random weights: structured noise, both streams
    generated = [
        noise(
            "a ball bouncing",
            task="t2av",
            seconds=FRAMES / FPS,
            seed=i,
            num_inference_steps=2 + i % 3,
            progress=False,
        )
        for i in range(len(unshifted))
    ]
    nulls["random-weight model output"] = [through_mp4(g.frames[0], g.audio[0, 0], folder) for g in generated]
    print("\n| null case | clips | offset claimed |")
    print("| --- | ---: | ---: |")
    for name, estimates in nulls.items():
        claimed = sum(e.determined for e in estimates)
        print(f"| {name} | {len(estimates)} | {claimed} ({100 * claimed / len(estimates):.0f}%) |")


if __name__ == "__main__":
    main()
