"""Checks and conversions of the arrays media writers take: frames, images and audio.

`what` names the value in messages, with its file where there is one ("out.mp4: frames").
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from omni.media.errors import MediaError

MAX_AUDIO_CHANNELS = 2


def to_numpy(value: Any, what: str) -> np.ndarray:
    """A NumPy view or CPU copy of an array or tensor; bfloat16 tensors become float32 (NumPy has none)."""
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu()
        if value.dtype == torch.bfloat16:
            value = value.float()
        return value.numpy()
    if isinstance(value, np.ndarray):
        return value
    raise MediaError(f"{what} must be a numpy array or torch tensor, got {type(value).__name__}")


PIXEL_LAYOUTS = {3: "(H, W, 3)", 4: "(F, H, W, 3)"}


def check_pixels(pixels: np.ndarray, what: str, ndim: int) -> None:
    """Raise unless `pixels` is uint8, or floating point (converted later), with `ndim` dims and 3 channels last."""
    if not (pixels.dtype == np.uint8 or np.issubdtype(pixels.dtype, np.floating)):
        raise MediaError(
            f"{what} dtype {pixels.dtype} is not supported; use uint8 in [0, 255] or float in [0, 1]"
        )
    if pixels.ndim != ndim or pixels.shape[-1] != 3:
        hint = " (channels first? move them last)" if pixels.ndim == ndim and pixels.shape[-3] == 3 else ""
        raise MediaError(f"{what} must be {PIXEL_LAYOUTS[ndim]} RGB, got shape {pixels.shape}{hint}")
    if 0 in pixels.shape:
        raise MediaError(f"{what} is empty: shape {pixels.shape}")


def pixels_to_uint8(pixels: np.ndarray, what: str) -> np.ndarray:
    """uint8 pixels as they are; float pixels in [0, 1] scaled by 255 and rounded. NaN or out of range raises."""
    if pixels.dtype == np.uint8:
        return pixels
    pixels = pixels.astype(np.float32, copy=False)
    bad = ~((pixels >= 0) & (pixels <= 1))  # also catches NaN
    if bad.any():
        first = tuple(int(i) for i in np.argwhere(bad)[0])
        raise MediaError(
            f"{what} has {int(bad.sum())} values outside [0, 1] or not finite "
            f"(first at index {first}: {pixels[first]}); float pixels must lie in [0, 1]"
        )
    return np.round(pixels * 255).astype(np.uint8)


def audio_to_float32(audio: np.ndarray, what: str) -> np.ndarray:
    """(N,) or (C, N) floating-point audio in [-1, 1] as contiguous (C, N) float32, C <= 2; else raise."""
    if not np.issubdtype(audio.dtype, np.floating):
        raise MediaError(
            f"{what} dtype {audio.dtype} is not supported; use float in [-1, 1] (int16 PCM: divide by 32768)"
        )
    if audio.ndim == 1:
        audio = audio[None]
    if audio.ndim != 2 or not 1 <= audio.shape[0] <= MAX_AUDIO_CHANNELS:
        hint = (
            " ((N, C) audio? transpose it)"
            if audio.ndim == 2 and audio.shape[1] <= MAX_AUDIO_CHANNELS
            else ""
        )
        raise MediaError(
            f"{what} must be (N,) or (C, N) with C in 1..{MAX_AUDIO_CHANNELS} channels, got shape {audio.shape}{hint}"
        )
    if audio.shape[1] == 0:
        raise MediaError(f"{what} is empty: shape {audio.shape}")
    audio = np.ascontiguousarray(audio, dtype=np.float32)
    check_audio_range(audio, what)
    return audio


def check_audio_range(audio: np.ndarray, what: str) -> None:
    """Raise unless every sample of (C, N) float audio is finite and in [-1, 1]."""
    bad = ~(np.abs(audio) <= 1)  # also catches NaN
    if bad.any():
        channel, sample = (int(i) for i in np.argwhere(bad)[0])
        raise MediaError(
            f"{what} has {int(bad.sum())} samples outside [-1, 1] or not finite (first: channel {channel}, "
            f"sample {sample}, value {audio[channel, sample]}); clip or normalise it"
        )
