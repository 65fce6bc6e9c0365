"""Frame geometry shared by the pipeline, data, evaluation and the command line: frame sizes, frame counts
of a causal video VAE (1 + temporal * k) and the cover-and-crop resize."""

from __future__ import annotations

import math

import numpy as np
from PIL import Image

MAX_SIDE = 8192  # pixels; far above what fits in memory, so only typing mistakes are refused


def parse_size(text: str, name: str = "--size") -> tuple[int, int]:
    """`64` or `WxH` (e.g. `832x480`) -> (height, width); a ValueError names `name` and what is allowed."""
    try:
        if "x" in text.lower():
            width, height = (int(v) for v in text.lower().split("x"))
        else:
            width = height = int(text)
    except ValueError as error:
        raise ValueError(f"{name} must be N or WxH (e.g. 64 or 832x480), got {text[:40]!r}") from error
    if not (1 <= width <= MAX_SIDE and 1 <= height <= MAX_SIDE):
        raise ValueError(f"{name} sides must be in [1, {MAX_SIDE}] pixels, got {text!r}")
    return height, width


def latent_frames(frames: int, temporal: int) -> int:
    """Latent frames whose decoded clip (1 + temporal (L - 1) frames) covers `frames` frames."""
    return math.ceil((max(frames, 1) - 1) / temporal) + 1


def nearest_valid_frames(num_frames: int, temporal: int) -> int:
    """The frame count of the form 1 + temporal * k closest to `num_frames` (ties go up)."""
    k = max(0, math.floor((num_frames - 1) / temporal + 0.5))
    return 1 + temporal * k


def whole_latent_frames(num_frames: int, temporal: int) -> int:
    """The longest prefix of `num_frames` a causal VAE encodes whole: the largest 1 + temporal * k <= num_frames."""
    return 1 + temporal * ((num_frames - 1) // temporal)


def check_num_frames(num_frames: int, temporal: int) -> int:
    """Frame counts must be 1 + temporal * k for the causal video VAE."""
    if isinstance(num_frames, bool) or not isinstance(num_frames, int) or num_frames < 1:
        raise ValueError(f"num_frames must be a positive integer, got {num_frames!r}")
    if (num_frames - 1) % temporal:
        raise ValueError(
            f"num_frames={num_frames} breaks the video VAE's 1 + {temporal}k rule; "
            f"the nearest valid value is {nearest_valid_frames(num_frames, temporal)}"
        )
    return num_frames


def cover_transform(
    height: int, width: int, target_height: int, target_width: int
) -> tuple[float, float, float]:
    """(scale, left, top) of `resize_cover`: a source point p maps to (p - (left, top)) * scale."""
    scale = max(target_height / height, target_width / width)
    return scale, (width - target_width / scale) / 2, (height - target_height / scale) / 2


def resize_cover(frame: np.ndarray, height: int, width: int) -> np.ndarray:
    """(H, W, 3) uint8 -> (height, width, 3): scale so the image covers the target, crop the center."""
    source_height, source_width = frame.shape[:2]
    if (source_height, source_width) == (height, width):
        return frame
    scale, left, top = cover_transform(source_height, source_width, height, width)
    box = (left, top, left + width / scale, top + height / scale)
    image = Image.fromarray(frame).resize((width, height), Image.Resampling.BICUBIC, box=box)
    return np.asarray(image)
