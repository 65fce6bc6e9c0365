"""Validation and conversion of user inputs, with errors that name the value and what is allowed."""

from __future__ import annotations

import math

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from omni.media.arrays import check_audio_range
from omni.media.geometry import resize_cover
from omni.tasks import MAX_SECONDS


def check_text(name: str, text: str) -> str:
    """A prompt must be a string of valid Unicode (undecodable bytes from a terminal arrive as surrogates)."""
    if not isinstance(text, str):
        raise ValueError(f"{name} must be a string, got {type(text).__name__}")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as error:
        raise ValueError(
            f"{name} is not valid Unicode text (undecodable character at position {error.start})"
        ) from error
    return text


def check_seconds(seconds: float, fps: float) -> float:
    if not isinstance(seconds, (int, float)) or isinstance(seconds, bool) or not math.isfinite(seconds):
        raise ValueError(f"seconds must be a finite number, got {seconds!r}")
    if not (0 < seconds <= MAX_SECONDS):
        raise ValueError(f"seconds must be in (0, {MAX_SECONDS:g}], got {seconds:g}")
    if round(seconds * fps) < 1:
        raise ValueError(f"seconds={seconds:g} at {fps:g} fps is shorter than one frame")
    return float(seconds)


def check_fps(fps: float) -> float:
    if (
        not isinstance(fps, (int, float))
        or isinstance(fps, bool)
        or not math.isfinite(fps)
        or not 1 <= fps <= 120
    ):
        raise ValueError(f"fps must be a number in [1, 120], got {fps!r}")
    return float(fps)


def check_size(height: int, width: int, multiple: int) -> tuple[int, int]:
    """Height and width must be positive multiples of the latent patch in pixels."""
    for name, value in (("height", height), ("width", width)):
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if value % multiple:
            nearest = max(multiple, round(value / multiple) * multiple)
            raise ValueError(
                f"{name}={value} is not a multiple of {multiple}; the nearest valid value is {nearest}"
            )
    return height, width


def check_finite(name: str, values: np.ndarray | Tensor) -> None:
    array = values.detach().cpu().numpy() if isinstance(values, Tensor) else np.asarray(values)
    if array.size == 0:
        raise ValueError(f"{name} is empty")
    if np.issubdtype(array.dtype, np.floating) and not np.isfinite(array).all():
        raise ValueError(f"{name} contains NaN or infinite values")


def image_to_array(image: np.ndarray | Image.Image | Tensor) -> np.ndarray:
    """An RGB image as (H, W, 3) uint8; accepts PIL images, uint8 arrays and float arrays/tensors in [0, 1]."""
    if isinstance(image, Image.Image):
        return np.asarray(image.convert("RGB"))
    array = image.detach().cpu().numpy() if isinstance(image, Tensor) else np.asarray(image)
    if array.ndim != 3 or array.shape[-1] != 3:
        raise ValueError(f"image must be (H, W, 3) RGB, got shape {array.shape}")
    if array.dtype == np.uint8:
        return array
    check_finite("image", array)
    if np.issubdtype(array.dtype, np.floating):
        if array.min() < 0 or array.max() > 1:
            raise ValueError(
                f"float images must lie in [0, 1], got range [{array.min():.3g}, {array.max():.3g}]"
            )
        return np.round(array * 255).astype(np.uint8)
    raise ValueError(f"image dtype must be uint8 or float, got {array.dtype}")


def fit_image(
    image: np.ndarray, height: int, width: int, tolerance: float = 0.01, crop: bool = False
) -> np.ndarray:
    """Resize an (H, W, 3) uint8 image to (height, width). A different aspect ratio is refused (a key frame
    must not be distorted or cut) unless `crop`, which scales to cover and crops the centre (references)."""
    h, w = image.shape[:2]
    if (h, w) == (height, width):
        return image
    if crop:
        return resize_cover(image, height, width)
    if abs((w / h) / (width / height) - 1) > tolerance:
        raise ValueError(
            f"image is {w}x{h} (aspect {w / h:.3f}) but the output is {width}x{height} (aspect {width / height:.3f}); "
            f"crop the image to the output's aspect ratio or pass --size {w // 16 * 16}x{h // 16 * 16}"
        )
    return np.asarray(Image.fromarray(image).resize((width, height), Image.Resampling.BICUBIC))


def frames_to_tensor(frames: np.ndarray) -> Tensor:
    """(F, H, W, 3) uint8 -> (1, 3, F, H, W) float in [-1, 1]."""
    x = torch.from_numpy(np.array(frames, dtype=np.float32)) / 127.5 - 1.0  # a copy: inputs may be read-only
    return x.permute(3, 0, 1, 2)[None]


def tensor_to_frames(x: Tensor) -> np.ndarray:
    """(B, 3, F, H, W) in [-1, 1] -> (B, F, H, W, 3) uint8."""
    x = ((x.float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return x.permute(0, 2, 3, 4, 1).cpu().numpy()


def resample_frames(frames: np.ndarray, fps: float, target_fps: float, height: int, width: int) -> np.ndarray:
    """Retime (nearest frame) and resize (bicubic) a (F, H, W, 3) uint8 clip."""
    check_finite("video", frames[:1].astype(np.float32))
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"video frames must be (F, H, W, 3), got shape {frames.shape}")
    count = max(1, math.floor(len(frames) / fps * target_fps + 1e-6))
    index = np.minimum(np.round(np.arange(count) * fps / target_fps).astype(int), len(frames) - 1)
    frames = frames[index]
    if frames.shape[1:3] != (height, width):
        frames = np.stack([fit_image(f, height, width) for f in frames])
    return frames


def audio_to_array(audio: np.ndarray | Tensor, channels: int) -> np.ndarray:
    """(N,) or (C, N) audio -> (channels, N) float32: mono is duplicated, extra channels are averaged."""
    array = audio.detach().cpu().numpy() if isinstance(audio, Tensor) else np.asarray(audio)
    array = array.astype(np.float32)
    if array.ndim == 1:
        array = array[None]
    if array.ndim != 2:
        raise ValueError(f"audio must be (N,) or (C, N), got shape {array.shape}")
    check_finite("audio", array)
    check_audio_range(array, "audio")
    if array.shape[0] != channels:
        array = np.repeat(array.mean(0, keepdims=True), channels, axis=0)
    return array
