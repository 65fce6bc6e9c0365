"""Find and decode a system's output for a suite item, whatever its container: video, image or sound."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from omni import media
from omni.eval.harness.suite import AUDIO_SUFFIXES, IMAGE_SUFFIXES, VIDEO_OUTPUT_TASKS, SuiteItem


@dataclass(frozen=True, eq=False)
class DecodedMedia:
    """An output as arrays: frames (F, H, W, 3) uint8 (an image is one frame, fps None) and audio (C, N)."""

    path: Path
    frames: np.ndarray | None
    fps: float | None
    audio: np.ndarray | None
    sample_rate: int | None

    @property
    def is_image(self) -> bool:
        return self.frames is not None and self.fps is None

    @property
    def seconds(self) -> float | None:
        """Duration: the video's frames, else the sound's length (None for an image)."""
        if self.frames is not None and self.fps:
            return len(self.frames) / self.fps
        if self.audio is not None and self.sample_rate:
            return self.audio.shape[-1] / self.sample_rate
        return None


def decode_output(path: Path, item: SuiteItem) -> DecodedMedia:
    """Decode `path` for `item`; raise `MediaError` when the file is broken or lacks what the task outputs."""
    suffix = path.suffix.lower()
    if suffix in IMAGE_SUFFIXES:
        return DecodedMedia(path, media.read_image(path)[None], None, None, None)
    if suffix in AUDIO_SUFFIXES:
        audio, rate = media.read_audio(path)
        return DecodedMedia(path, None, None, audio, rate)
    clip = media.read_video(path)
    if item.task in VIDEO_OUTPUT_TASKS and not clip.has_video:
        raise media.MediaError(f"{path}: task {item.task} outputs video, but the file has no video stream")
    return DecodedMedia(path, clip.frames, clip.fps, clip.audio, clip.sample_rate)
