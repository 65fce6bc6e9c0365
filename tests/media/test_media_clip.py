"""Clip: the decoded-media dataclass other modules receive from read_video."""

from __future__ import annotations

import numpy as np
import pytest

from omni.media import Clip, MediaError


def test_duration_is_the_video_duration_when_there_is_video():
    clip = Clip(np.zeros((33, 4, 4, 3), np.uint8), 16.0, np.zeros((1, 32000), np.float32), 16000)
    assert clip.has_video and clip.has_audio and clip.num_frames == 33
    assert clip.duration_seconds == 33 / 16


def test_audio_only_clip_reports_audio_duration():
    clip = Clip(None, None, np.zeros((2, 8000), np.float32), 16000)
    assert not clip.has_video and clip.num_frames == 0 and clip.duration_seconds == 0.5


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({}, "needs frames, audio or both"),
        ({"frames": np.zeros((2, 4, 4, 3), np.uint8)}, "fps must be given"),
        ({"frames": np.zeros((2, 4, 4, 3), np.uint8), "fps": -1.0}, "fps must be > 0"),
        ({"frames": np.zeros((2, 4, 4), np.uint8), "fps": 8.0}, r"\(F, H, W, 3\) uint8"),
        ({"audio": np.zeros((1, 4), np.float64), "sample_rate": 8000}, r"\(C, N\) float32"),
        ({"audio": np.zeros((1, 4), np.float32)}, "sample_rate must be given"),
    ],
)
def test_inconsistent_clips_are_refused(kwargs, message):
    fields = {"frames": None, "fps": None, "audio": None, "sample_rate": None} | kwargs
    with pytest.raises(MediaError, match=message):
        Clip(**fields)
