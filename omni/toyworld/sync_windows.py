"""Toy-world clips with their audio shifted by known amounts: the ground truth that validates the AV-sync
metric (tests/eval/test_metrics_sync.py) and measures its tables (tools/measure_sync.py).

A clip is rendered at `RENDERED` frames and its `FRAMES`-frame window analysed from frame `MARGIN` on, so
audio shifted by up to the margin still has real sound on both sides."""

from __future__ import annotations

import numpy as np

from omni.toyworld.clip import render
from omni.toyworld.motion import bounces
from omni.toyworld.sampling import sample_scene

FPS, RATE, FRAMES = 16.0, 16000, 33
MARGIN = 8  # frames rendered before the window
RENDERED = 65  # frames rendered: the window, its margin before, and more after
SHIFTS_MS = (-240, -160, -80, 0, 80, 160, 240)


def window_hits(scene) -> list[float]:
    """Wall-hit times at least 0.25 s inside the analysed window: seen, and heard at every shift."""
    low, high = MARGIN / FPS + 0.25, (MARGIN + FRAMES - 1) / FPS - 0.25
    return [b.time for obj in scene.objects for b in bounces(scene, obj) if low < b.time < high]


def bouncing_clips(motions: tuple[str, ...], count: int, first_seed: int = 0) -> list:
    """`count` renders of one object with the motions in turn, each with 2+ wall hits inside the window."""
    clips, seed = [], first_seed
    while len(clips) < count:
        scene = sample_scene(seed, num_objects=1, motion=motions[seed % len(motions)], num_frames=RENDERED)
        seed += 1
        if len(window_hits(scene)) >= 2:
            clips.append(render(scene))
    return clips


def shifted(clip, shift_ms: float) -> tuple[np.ndarray, np.ndarray]:
    """The window's frames and its audio played `shift_ms` late (negative: early), both from the long render."""
    start = round((MARGIN / FPS - shift_ms / 1000) * RATE)
    return clip.frames[MARGIN : MARGIN + FRAMES], clip.audio[start : start + round(FRAMES / FPS * RATE)]
