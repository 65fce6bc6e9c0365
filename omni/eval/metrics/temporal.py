"""How a clip moves over time, without learned weights: motion magnitude, smoothness, flicker, frozen frames.

All are computed on luma at the analysis scale of `omni.eval.metrics.signals` (short side 64 px), in 8-bit
levels, so clips of any resolution are measured alike. A global brightness change is told apart from
motion by the median over pixels: motion changes a minority of the pixels, a brightness change all.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from omni.eval.metrics.signals import analysis_frames, luma

NO_MOTION_LEVELS = 0.05  # mean frame differences (8-bit levels) under this: no motion, codec noise at most
FROZEN_LEVELS = 0.1  # a frame whose mean difference from the previous one is under this repeats it


@dataclass(frozen=True)
class TemporalStats:
    """Per-clip temporal metrics (NaN where undefined: fewer frames than needed, or no motion).

    Attributes:
        motion_magnitude: mean absolute frame-to-frame luma difference, global brightness change removed,
            in 8-bit levels per frame.
        motion_smoothness: 1 - mean |second difference of the motion energy| / (4 x its mean), in [0, 1]:
            1 for motion at a steady pace, 0 for the worst stutter (motion on every other frame only).
            NaN without motion.
        flicker: RMS of a quarter of the global brightness track's second difference, in 8-bit levels:
            brightness alternating by +-a levels reads a; a steady fade reads 0.
        frozen_frame_ratio: share of frames that repeat the previous one.
    """

    motion_magnitude: float
    motion_smoothness: float
    flicker: float
    frozen_frame_ratio: float


def temporal_stats(frames: np.ndarray, *, analysed: np.ndarray | None = None) -> TemporalStats:
    """Temporal metrics of (F, H, W, 3) uint8 frames (`analysed`: their `analysis_frames`, if at hand)."""
    images = analysis_frames(frames) if analysed is None else analysed
    levels = 255.0 * luma(images).astype(np.float64)  # (F, h, w)
    if len(levels) < 2:
        nan = float("nan")
        return TemporalStats(nan, nan, nan, nan)
    differences = np.diff(levels, axis=0)  # (F-1, h, w)
    brightness_steps = np.median(differences, axis=(1, 2))  # global brightness change per frame
    energy = np.abs(differences - brightness_steps[:, None, None]).mean(axis=(1, 2))
    return TemporalStats(
        motion_magnitude=float(energy.mean()),
        motion_smoothness=motion_smoothness(energy),
        flicker=flicker(brightness_steps),
        frozen_frame_ratio=float(np.mean(np.abs(differences).mean(axis=(1, 2)) < FROZEN_LEVELS)),
    )


def motion_smoothness(energy: np.ndarray) -> float:
    """1 - mean |second difference| / (4 mean) of a motion-energy track (one value per frame pair).

    The second difference of a non-negative track is at most 4 times its mean, so the result is in [0, 1].
    """
    energy = np.asarray(energy, dtype=np.float64)
    if energy.size < 3 or energy.mean() < NO_MOTION_LEVELS:
        return float("nan")
    jerk = np.abs(np.diff(energy, n=2)).mean()
    return float(np.clip(1 - jerk / (4 * energy.mean()), 0.0, 1.0))


def flicker(brightness_steps: np.ndarray) -> float:
    """RMS of a quarter of the second difference of the brightness track whose frame-to-frame steps are given.

    A quarter, so that brightness alternating by +-a levels (steps of +-2a) reads a.
    """
    steps = np.asarray(brightness_steps, dtype=np.float64)
    if steps.size < 2:
        return float("nan")
    return float(np.sqrt(np.mean((np.diff(steps) / 4) ** 2)))
