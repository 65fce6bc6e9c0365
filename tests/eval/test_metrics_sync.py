"""Audio-video sync offset, validated on toy-world clips whose audio was shifted by known amounts."""

from __future__ import annotations

import numpy as np
import pytest

from omni.eval.metrics.signals import motion_change_envelope, onset_strength
from omni.eval.metrics.sync import av_sync
from omni.media import read_video, write_mp4
from omni.toyworld import render, sample_scene, sync_windows
from omni.toyworld.sync_windows import FPS, RATE, SHIFTS_MS, shifted

FRAME_MS = 1000 / FPS


@pytest.fixture(scope="module")
def bouncing_clips():
    """4 clips of one object bouncing left-right or up-down (65 frames), 2+ wall hits well inside the window.

    Diagonal bounces reverse only one component of the motion, a weaker visual event: docs/benchmarking.md
    gives their (lower) share of determined offsets, measured by tools/measure_sync.py.
    """
    return sync_windows.bouncing_clips(("horizontal", "vertical"), 4)


@pytest.mark.slow
def test_shifted_audio_is_recovered_within_a_frame_through_mp4(bouncing_clips, tmp_path):
    errors = []
    for index, clip in enumerate(bouncing_clips):
        for shift in SHIFTS_MS:
            frames, audio = shifted(clip, shift)
            path = tmp_path / f"clip{index}_{shift}.mp4"
            write_mp4(path, frames, FPS, audio[None], RATE)
            decoded = read_video(path)
            estimate = av_sync(decoded.frames, decoded.fps, decoded.audio, decoded.sample_rate)
            assert estimate.determined, f"clip {index}, shift {shift} ms: {estimate.reason}"
            errors.append(estimate.offset_ms - shift)
    errors = np.abs(errors)
    assert errors.max() < FRAME_MS, f"errors (ms): {np.round(errors, 1)}"
    assert errors.mean() < FRAME_MS / 4


def test_sign_audio_late_is_positive(bouncing_clips):
    frames, late_audio = shifted(bouncing_clips[0], 160)
    _, early_audio = shifted(bouncing_clips[0], -160)
    assert av_sync(frames, FPS, late_audio, RATE).offset_ms > 100
    assert av_sync(frames, FPS, early_audio, RATE).offset_ms < -100


def test_still_picture_gives_no_offset(bouncing_clips, tmp_path):
    frames, audio = shifted(bouncing_clips[0], 0)
    still = np.repeat(frames[:1], len(frames), axis=0)
    estimate = av_sync(still, FPS, audio, RATE)
    assert not estimate.determined and estimate.confidence == 0 and estimate.reason == "still picture"
    # Through H.264 the first P-frames refine the first I-frame: one burst of change, which is not two events.
    for index, clip in enumerate(bouncing_clips):
        frames, audio = shifted(clip, 0)
        write_mp4(
            tmp_path / f"still{index}.mp4", np.repeat(frames[:1], len(frames), axis=0), FPS, audio[None], RATE
        )
        decoded = read_video(tmp_path / f"still{index}.mp4")
        estimate = av_sync(decoded.frames, FPS, decoded.audio, RATE)
        assert not estimate.determined and estimate.confidence == 0, estimate.reason


def test_silent_audio_gives_no_offset(bouncing_clips):
    frames, audio = shifted(bouncing_clips[0], 0)
    estimate = av_sync(frames, FPS, np.zeros_like(audio), RATE)
    assert not estimate.determined and estimate.confidence == 0 and estimate.reason == "silent audio"


def test_room_tone_without_events_gives_no_offset(bouncing_clips):
    """Moving picture, but a soundtrack of room tone only (an orbiting object never beeps)."""
    frames, _ = shifted(bouncing_clips[1], 0)
    for ambient in ("hum", "noise"):
        quiet = render(sample_scene(3, num_objects=1, motion="orbit", ambient=ambient))
        estimate = av_sync(frames, FPS, quiet.audio, RATE)
        assert not estimate.determined, f"{ambient}: claimed {estimate.offset_ms} ms"
        assert estimate.confidence == 0


def test_onset_strength_peaks_at_a_click():
    audio = np.zeros(RATE)
    onset = 0.5
    n = round(onset * RATE)
    audio[n : n + 400] = 0.5 * np.sin(2 * np.pi * 440 * np.arange(400) / RATE)
    envelope = onset_strength(audio, RATE)
    # The log compression responds as the first energy enters the window: a hard onset reads a few ms early.
    assert abs(envelope.times[np.argmax(envelope.values)] - onset) <= 0.008


def test_motion_change_peaks_at_a_reversal():
    """A square moving right reverses at frame 10: the motion change is largest at that frame."""
    frames = np.full((20, 64, 64, 3), 100, np.uint8)
    for i in range(20):
        x = 10 + 3 * (i if i <= 10 else 20 - i)
        frames[i, 24:40, x : x + 16] = 220
    envelope = motion_change_envelope(frames, FPS)
    assert envelope.times[np.argmax(envelope.values)] == pytest.approx(10 / FPS)


def test_bad_lag_range_is_refused(bouncing_clips):
    frames, audio = shifted(bouncing_clips[0], 0)
    with pytest.raises(ValueError, match="max_lag_seconds"):
        av_sync(frames, FPS, audio, RATE, max_lag_seconds=0)
