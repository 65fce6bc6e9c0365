"""Motion magnitude, smoothness, flicker and frozen frames on synthetic clips with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from omni.eval.metrics.temporal import temporal_stats


def moving_square(positions: list[int], size: int = 64) -> np.ndarray:
    """(F, size, size, 3) uint8: a bright square on a textured grey room at the given x positions."""
    yy, xx = np.mgrid[:size, :size]
    room = 100 + 20 * np.sin(xx / 5.0) * np.cos(yy / 7.0)
    frames = np.repeat(room[None], len(positions), axis=0)
    for i, x in enumerate(positions):
        frames[i, 20:36, x : x + 16] = 220
    return np.repeat(frames[..., None], 3, axis=-1).round().astype(np.uint8)


def test_still_clip_has_no_motion_no_flicker_and_only_frozen_frames():
    stats = temporal_stats(moving_square([10] * 12))
    assert stats.motion_magnitude == 0 and stats.flicker == 0 and stats.frozen_frame_ratio == 1
    assert np.isnan(stats.motion_smoothness)


def test_steady_motion_is_smooth_and_stutter_is_not():
    steady = temporal_stats(moving_square([4 + 2 * i for i in range(20)]))
    stutter = temporal_stats(moving_square([4 + 4 * (i // 2) for i in range(20)]))  # every frame twice
    assert steady.motion_magnitude > 1.0
    assert steady.motion_smoothness > 0.9
    assert stutter.motion_smoothness < 0.6
    assert stutter.frozen_frame_ratio == pytest.approx(10 / 19)
    assert steady.frozen_frame_ratio == 0


def test_flicker_reads_the_alternation_amplitude_and_is_not_motion():
    frames = moving_square([10] * 16).astype(np.int16)
    frames[1::2] += 6  # brightness alternates by +-3 levels around its mean
    stats = temporal_stats(frames.astype(np.uint8))
    assert stats.flicker == pytest.approx(3.0, abs=0.3)
    assert stats.motion_magnitude < 0.5


def test_a_steady_fade_is_not_flicker():
    frames = moving_square([10] * 16).astype(np.float64)
    frames *= np.linspace(1.0, 0.7, 16)[:, None, None, None]
    assert temporal_stats(frames.round().astype(np.uint8)).flicker < 0.3


def test_frames_must_be_uint8_rgb():
    with pytest.raises(ValueError, match="uint8"):
        temporal_stats(np.zeros((4, 16, 16, 3), np.float32))


def test_a_small_object_in_a_large_frame_is_still_motion():
    """Analysis happens at a 64 px short side; a 40 px square crossing a 640 x 360 frame must register."""
    frames = np.full((24, 360, 640, 3), 90, np.uint8)
    for i in range(24):
        frames[i, 160:200, 40 + 20 * i : 80 + 20 * i] = (220, 40, 40)
    stats = temporal_stats(frames)
    assert stats.motion_magnitude > 0.05 and stats.motion_smoothness > 0.9
