"""A decoded clip: video frames and/or audio on one clock."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from omni.media.errors import MediaError


@dataclass(frozen=True)
class Clip:
    """Video frames and/or audio that start together: audio sample 0 plays at the time of frame 0.

    Attributes:
        frames: (F, H, W, 3) uint8 RGB, or None for audio only.
        fps: frames per second, set exactly when `frames` is.
        audio: (C, N) float32 in [-1, 1], planar, or None for video only.
        sample_rate: audio samples per second, set exactly when `audio` is.
    """

    frames: np.ndarray | None
    fps: float | None
    audio: np.ndarray | None
    sample_rate: int | None

    def __post_init__(self) -> None:
        if self.frames is None and self.audio is None:
            raise MediaError("a Clip needs frames, audio or both; got neither")
        if (self.frames is None) != (self.fps is None):
            raise MediaError(f"Clip.fps must be given exactly when frames are; got fps={self.fps}")
        if (self.audio is None) != (self.sample_rate is None):
            raise MediaError(f"Clip.sample_rate must be given exactly when audio is; got {self.sample_rate}")
        if self.frames is not None:
            if self.frames.dtype != np.uint8 or self.frames.ndim != 4 or self.frames.shape[-1] != 3:
                raise MediaError(
                    f"Clip.frames must be (F, H, W, 3) uint8, got {self.frames.dtype} {self.frames.shape}"
                )
            if not self.fps > 0:
                raise MediaError(f"Clip.fps must be > 0, got {self.fps}")
        if self.audio is not None:
            if self.audio.dtype != np.float32 or self.audio.ndim != 2:
                raise MediaError(
                    f"Clip.audio must be (C, N) float32, got {self.audio.dtype} {self.audio.shape}"
                )
            if not self.sample_rate > 0:
                raise MediaError(f"Clip.sample_rate must be > 0, got {self.sample_rate}")

    @property
    def has_video(self) -> bool:
        return self.frames is not None

    @property
    def has_audio(self) -> bool:
        return self.audio is not None

    @property
    def num_frames(self) -> int:
        """Number of video frames; 0 for an audio-only clip."""
        return 0 if self.frames is None else self.frames.shape[0]

    @property
    def duration_seconds(self) -> float:
        """Video duration (frames / fps) when there is video, else audio duration (samples / rate)."""
        if self.frames is not None:
            return self.num_frames / self.fps
        return self.audio.shape[1] / self.sample_rate
