"""Conforming a decoded clip to the prepared format: one frame rate, size, duration bucket and audio rate.

Every prepared sample of a bucket has the same latent shape, so the trainer can batch them without padding:
frames are retimed to the target fps (nearest frame), scaled so the short side fits and center-cropped (the
aspect ratio is kept, the edges are lost), trimmed from the start to the longest allowed frame count that the
clip covers, and the audio is mixed to the target channels, resampled and cut to exactly the video's duration.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

import numpy as np

from omni.media import Clip, MediaError, resample
from omni.media.geometry import check_num_frames, cover_transform, resize_cover
from omni.media.reading import check_readable, open_container
from omni.pipelines.inputs import audio_to_array, check_fps, check_size, resample_frames

# Why a clip is skipped; each skipped clip is counted under one of these in the index.
SKIP_REASONS = ("missing_file", "unreadable", "no_video", "too_short")


class ClipRejected(ValueError):
    """A clip that cannot be prepared. `reason` is one of `SKIP_REASONS`; the message says what was wrong."""

    def __init__(self, reason: str, message: str):
        if reason not in SKIP_REASONS:
            raise ValueError(f"unknown skip reason {reason!r}; allowed are {list(SKIP_REASONS)}")
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class ClipFormat:
    """What every prepared clip is conformed to.

    Attributes:
        fps: frames per second of the prepared video.
        height, width: frame size in pixels (multiples of `pixel_multiple`).
        frames: the allowed frame counts (duration buckets), ascending, each of the form 1 + temporal * k.
        sample_rate: audio samples per second (the audio VAE's rate).
        audio_channels: audio channels the audio VAE takes.
        temporal: the video VAE's temporal compression (the k in 1 + k * n).
        pixel_multiple: height and width must be multiples of this (pixels per video token).
    """

    fps: float
    height: int
    width: int
    frames: tuple[int, ...]
    sample_rate: int
    audio_channels: int
    temporal: int = 4
    pixel_multiple: int = 16

    def __post_init__(self) -> None:
        check_fps(self.fps)
        check_size(self.height, self.width, self.pixel_multiple)
        if not self.frames:
            raise ValueError("frames must list at least one frame count (e.g. 33 or 17,33,65)")
        for count in self.frames:
            check_num_frames(count, self.temporal)
        if list(self.frames) != sorted(set(self.frames)):
            raise ValueError(f"frames must be strictly ascending without repeats, got {list(self.frames)}")
        for name in ("sample_rate", "audio_channels"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")

    def bucket(self, num_frames: int) -> int | None:
        """The longest allowed frame count a clip of `num_frames` frames covers; None if it is too short."""
        fitting = [count for count in self.frames if count <= num_frames]
        return fitting[-1] if fitting else None

    def num_samples(self, num_frames: int) -> int:
        """Audio samples spanning `num_frames` video frames."""
        return round(num_frames / self.fps * self.sample_rate)

    def source_frames_needed(self, source_fps: float) -> int:
        """Frames of a `source_fps` video that cover the longest bucket once retimed (decode no more)."""
        return math.ceil(self.frames[-1] * source_fps / self.fps) + 1


@dataclass(frozen=True)
class SourceClip:
    """A decoded clip as a source delivers it, before conforming.

    Attributes:
        clip_id: a name unique within its source (a manifest line, a toy-world seed).
        frames: (F, H, W, 3) uint8 RGB at `fps`.
        fps: frames per second.
        audio: (C, N) float32 in [-1, 1] at `sample_rate`, starting with frame 0; None for a silent clip.
        sample_rate: audio samples per second; None exactly when `audio` is.
        caption: the clip's text.
        origin: where it came from (file paths), recorded with the sample.
        audio_origin: "track" (the video's own), "file" (a separate file) or "none".
        reference: optional (H', W', 3) uint8 image of the clip's subject (default: its middle frame).
        trajectory: optional (F, 2) subject centre (x, y) in pixels per frame, NaN where unknown.
        camera: optional (F, 3) camera offset dx, dy in pixels and zoom per frame.
        subject_boxes: optional (F, 4) box (x0, y0, x1, y1) in pixels per frame around the clip's subjects
            (all of them), NaN where unknown: where a recipe's `focus_weight` puts more of the loss.
    """

    clip_id: str
    frames: np.ndarray
    fps: float
    audio: np.ndarray | None
    sample_rate: int | None
    caption: str
    origin: str = ""
    audio_origin: str = "track"
    reference: np.ndarray | None = None
    trajectory: np.ndarray | None = None
    camera: np.ndarray | None = None
    subject_boxes: np.ndarray | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.clip_id, str) or not self.clip_id:
            raise ValueError(f"clip_id must be a non-empty string, got {self.clip_id!r}")
        if not isinstance(self.caption, str) or not self.caption.strip():
            raise ValueError(f"clip {self.clip_id}: caption must be a non-empty string, got {self.caption!r}")
        if self.frames is None:
            raise ValueError(f"clip {self.clip_id}: frames are required")
        Clip(self.frames, self.fps, self.audio, self.sample_rate)  # checks dtypes, shapes and rates
        if self.audio_origin not in ("track", "file", "none"):
            raise ValueError(f"audio_origin must be track, file or none, got {self.audio_origin!r}")
        if self.subject_boxes is not None and np.shape(self.subject_boxes) != (len(self.frames), 4):
            raise ValueError(
                f"clip {self.clip_id}: subject_boxes must be (frames, 4) = ({len(self.frames)}, 4), "
                f"got {np.shape(self.subject_boxes)}"
            )


@dataclass(frozen=True)
class ConformedClip:
    """A clip in the prepared format.

    Attributes:
        frames: (F, height, width, 3) uint8 with F one of the format's frame counts.
        audio: (audio_channels, format.num_samples(F)) float32 at the format's sample rate.
        silent: the clip had no audio at all; `audio` is silence.
        audio_padding: samples of silence appended because the audio ended before the video.
        reference_frame: (height, width, 3) uint8 image of the subject.
        motion: (F, 5) float32 subject centre x, y and camera dx, dy, zoom per frame, in the format's
            pixels (NaN where unknown).
        subject_boxes: (F, 4) float32 box (x0, y0, x1, y1) around the subjects per frame in the format's
            pixels, or None when the source marks none.
    """

    frames: np.ndarray
    audio: np.ndarray
    silent: bool
    audio_padding: int
    reference_frame: np.ndarray
    motion: np.ndarray
    subject_boxes: np.ndarray | None = None


def conform(clip: SourceClip, fmt: ClipFormat) -> ConformedClip:
    """Retime, trim, resize + crop and match the audio of `clip` to `fmt`.

    Raises:
        ClipRejected("too_short"): the retimed clip is shorter than the shortest allowed frame count.
    """
    height, width = clip.frames.shape[1:3]
    frames = resample_frames(clip.frames, clip.fps, fmt.fps, height, width)  # retime only
    picks = retime_index(len(clip.frames), clip.fps, fmt.fps)
    bucket = fmt.bucket(len(frames))
    if bucket is None:
        raise ClipRejected(
            "too_short",
            f"{len(frames)} frames at {fmt.fps:g} fps ({len(clip.frames) / clip.fps:.2f} s), "
            f"shorter than the shortest allowed {fmt.frames[0]} frames",
        )
    frames = np.stack([resize_cover(frame, fmt.height, fmt.width) for frame in frames[:bucket]])
    reference = (
        frames[len(frames) // 2]
        if clip.reference is None
        else resize_cover(clip.reference, fmt.height, fmt.width)
    )
    motion = _conform_motion(clip, picks[:bucket], fmt)
    boxes = _conform_boxes(clip, picks[:bucket], fmt)

    num_samples = fmt.num_samples(bucket)
    if clip.audio is None:
        silence = np.zeros((fmt.audio_channels, num_samples), np.float32)
        return ConformedClip(frames, silence, True, 0, reference, motion, boxes)
    audio = audio_to_array(clip.audio, fmt.audio_channels)
    audio = resample(audio, clip.sample_rate, fmt.sample_rate)[:, :num_samples]
    padding = num_samples - audio.shape[1]
    audio = np.pad(audio, ((0, 0), (0, padding)))
    return ConformedClip(
        frames, np.ascontiguousarray(audio, dtype=np.float32), False, padding, reference, motion, boxes
    )


def retime_index(count: int, fps: float, target_fps: float) -> np.ndarray:
    """Source frame shown at each frame of the retimed clip (nearest frame, as `resample_frames` picks)."""
    frames = max(1, math.floor(count / fps * target_fps + 1e-6))
    return np.minimum(np.round(np.arange(frames) * fps / target_fps).astype(int), count - 1)


def _conform_motion(clip: SourceClip, picks: np.ndarray, fmt: ClipFormat) -> np.ndarray:
    """The clip's trajectory and camera in the conformed clip's frames and pixels: (F, 5), NaN if unknown."""
    motion = np.full((len(picks), 5), np.nan, np.float32)
    scale, left, top = cover_transform(*clip.frames.shape[1:3], fmt.height, fmt.width)
    if clip.trajectory is not None:
        motion[:, 0] = (clip.trajectory[picks, 0] - left) * scale
        motion[:, 1] = (clip.trajectory[picks, 1] - top) * scale
    if clip.camera is not None:
        motion[:, 2:4] = clip.camera[picks, :2] * scale
        motion[:, 4] = clip.camera[picks, 2]
    return motion


def _conform_boxes(clip: SourceClip, picks: np.ndarray, fmt: ClipFormat) -> np.ndarray | None:
    """The clip's subject boxes in the conformed clip's frames and pixels, clipped to the frame: (F, 4)."""
    if clip.subject_boxes is None:
        return None
    scale, left, top = cover_transform(*clip.frames.shape[1:3], fmt.height, fmt.width)
    boxes = (np.asarray(clip.subject_boxes, np.float64)[picks] - [left, top, left, top]) * scale
    return np.clip(boxes, 0, [fmt.width, fmt.height, fmt.width, fmt.height]).astype(np.float32)


def probe_fps(path: str | os.PathLike[str]) -> float | None:
    """Frame rate of the first video stream of `path`, read from the header without decoding; None when
    the file has no video stream.

    Raises:
        FileNotFoundError: `path` does not exist.
        MediaError: not a media file, or a video stream without a frame rate.
    """
    path = check_readable(path)
    with open_container(path) as container:
        if not container.streams.video:
            return None
        stream = container.streams.video[0]
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate
    if not rate or rate <= 0:
        raise MediaError(f"{path}: the video stream has no frame rate")
    return float(rate)
