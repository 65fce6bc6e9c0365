"""Event envelopes of a clip's picture and sound: what the sync and temporal metrics are computed from.

Video is analysed as luma at a small fixed scale (the short side area-averaged down to ANALYSIS_SIZE
pixels), so a 64 px toy clip and a 1080p hosted clip are measured alike and cheaply. Audio is analysed
as a mono mix.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

ANALYSIS_SIZE = 64  # short side of the luma frames the video envelopes are computed on
BLUR_SIGMA = 1.0  # pixels at the analysis scale: makes gradients meaningful across a few pixels
MOTION_NOISE_LEVEL = 2 / 255  # smaller frame-to-frame changes are codec noise or grain, not motion
DIRECTIONS = 8  # bins of the directogram, 45 degrees each
FRAMES_PER_CHUNK = 32  # frames converted to float at a time (a 10 s 1080p clip would not fit at once)
LUMA_WEIGHTS = (0.2126, 0.7152, 0.0722)  # BT.709, the matrix omni's writer tags its videos with

ONSET_WINDOW_SECONDS = 0.016  # STFT window of the spectral flux: short, for timing
ONSET_HOP_SECONDS = 0.004
ONSET_BANDS = 40  # mel bands the flux is summed over
ONSET_MIN_HZ = 30.0
ONSET_COMPRESSION = 100.0  # log(1 + C |X|): linear below about -40 dBFS, logarithmic above


@dataclass(frozen=True, eq=False)
class Envelope:
    """A sampled signal: `values[i]` at `times[i]` seconds (times increasing, on the clip's clock)."""

    values: np.ndarray
    times: np.ndarray


def analysis_frames(frames: np.ndarray, size: int = ANALYSIS_SIZE) -> np.ndarray:
    """(F, 3, h, w) float32 RGB in [0, 1] of (F, H, W, 3) uint8 frames, short side area-averaged to `size`.

    Frames already smaller than `size` keep their size; the aspect ratio is kept.
    """
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"frames must be (F, H, W, 3) uint8, got {frames.dtype} {frames.shape}")
    height, width = frames.shape[1:3]
    scale = min(1.0, size / min(height, width))
    out_size = (max(1, round(height * scale)), max(1, round(width * scale)))
    chunks = []
    for start in range(0, len(frames), FRAMES_PER_CHUNK):
        rgb = torch.from_numpy(frames[start : start + FRAMES_PER_CHUNK]).permute(0, 3, 1, 2).float()
        if out_size != (height, width):
            rgb = F.interpolate(rgb, size=out_size, mode="area")
        chunks.append(rgb / 255.0)  # scaled after shrinking: one pass less over the full-size frames
    return torch.cat(chunks).numpy()


def luma(images: np.ndarray) -> np.ndarray:
    """(F, h, w) BT.709 luma of (F, 3, h, w) RGB."""
    return np.einsum("fchw,c->fhw", images, np.asarray(LUMA_WEIGHTS, dtype=images.dtype))


def gaussian_blur(images: np.ndarray, sigma: float) -> np.ndarray:
    """(..., h, w) images blurred by a separable Gaussian of `sigma` pixels (edges replicated)."""
    radius = max(1, math.ceil(3 * sigma))
    x = torch.arange(-radius, radius + 1, dtype=torch.float32)
    kernel = torch.exp(-0.5 * (x / sigma) ** 2)
    kernel /= kernel.sum()
    shape = images.shape
    out = torch.from_numpy(np.ascontiguousarray(images, dtype=np.float32)).reshape(-1, 1, *shape[-2:])
    out = F.conv2d(F.pad(out, (radius, radius, 0, 0), mode="replicate"), kernel.view(1, 1, 1, -1))
    out = F.conv2d(F.pad(out, (0, 0, radius, radius), mode="replicate"), kernel.view(1, 1, -1, 1))
    return out.reshape(shape).numpy()


def directogram(images: np.ndarray, directions: int = DIRECTIONS) -> np.ndarray:
    """(F - 1, directions) motion per direction between consecutive frames of (F, C, h, w) images.

    Row i describes the change from frame i to frame i + 1. Each pixel of each channel votes for the
    direction of its normal flow, -I_t * grad(I) (the one component of motion a brightness change reveals;
    its sign does not depend on whether the object is brighter or darker than what it covers), weighted by
    max(|I_t| - MOTION_NOISE_LEVEL, 0) * |grad(I)| and split linearly between the two nearest bins. Colour
    channels vote separately, so an object that differs from the room in hue only still counts. This is
    the directogram of Davis & Agrawala, "Visual Rhythm and Beat" (2018), with normal flow in place of
    optical flow.
    """
    blurred = gaussian_blur(images, BLUR_SIGMA).astype(np.float64)
    temporal = np.diff(blurred, axis=0)  # (F-1, C, h, w) I_t
    middle = 0.5 * (blurred[1:] + blurred[:-1])
    grad_y, grad_x = np.gradient(middle, axis=(2, 3))
    weight = np.maximum(np.abs(temporal) - MOTION_NOISE_LEVEL, 0) * np.hypot(grad_x, grad_y)
    angle = np.arctan2(-temporal * grad_y, -temporal * grad_x)  # in (-pi, pi]
    position = (angle / (2 * np.pi) * directions) % directions
    lower = np.floor(position).astype(np.int64) % directions
    upper_share = position - np.floor(position)
    counts = np.zeros((temporal.shape[0], directions))
    rows = np.broadcast_to(np.arange(temporal.shape[0]).reshape(-1, 1, 1, 1), lower.shape)
    np.add.at(counts, (rows, lower), weight * (1 - upper_share))
    np.add.at(counts, (rows, (lower + 1) % directions), weight * upper_share)
    return counts / np.prod(images.shape[-2:])  # per pixel, so frame size does not matter


def motion_change_envelope(frames: np.ndarray, fps: float, *, analysed: np.ndarray | None = None) -> Envelope:
    """How much the picture's motion changes at each inner frame: the visual side of an impact or bounce.

    values[j] = sum over directions of |D[j + 1] - D[j]| for the directogram D, at the time of frame
    j + 1 (the frame both differences share). A reversal, start or stop of motion shows; steady motion
    and camera pans do not. Counting increases and decreases alike (not only decelerations) places an
    event that falls between two frames at its true time on average: its change is split between the
    two neighbouring frames in proportion to its distance from each. `analysed`: the frames'
    `analysis_frames`, when the caller has them already (they are the costly part for large frames).
    """
    if not fps > 0:
        raise ValueError(f"fps must be positive, got {fps}")
    counts = directogram(analysis_frames(frames) if analysed is None else analysed)
    values = np.abs(np.diff(counts, axis=0)).sum(axis=1)
    times = np.arange(1, len(values) + 1) / fps
    return Envelope(values, times)


def mono(audio: np.ndarray) -> np.ndarray:
    """(N,) float64 mix of (N,) or (C, N) audio (channels averaged)."""
    audio = np.asarray(audio, dtype=np.float64)
    if audio.ndim == 2:
        audio = audio.mean(axis=0)
    if audio.ndim != 1:
        raise ValueError(f"audio must be (N,) or (C, N), got shape {audio.shape}")
    return audio


def onset_strength(
    audio: np.ndarray,
    sample_rate: int,
    hop_seconds: float = ONSET_HOP_SECONDS,
    window_seconds: float = ONSET_WINDOW_SECONDS,
) -> Envelope:
    """Spectral flux of (N,) or (C, N) audio: the summed rise of log-compressed mel-band magnitudes per hop.

    Band magnitudes (the root of each mel band's power, normalised so a full-scale sine reads 0.5) are
    compressed as log(1 + ONSET_COMPRESSION x), so the flux follows relative (dB-like) change above about
    -40 dBFS; pooling bins into bands keeps a noise floor's random fluctuation from reading as onsets.
    Value m measures the rise from STFT frame m - 1 to m and is placed midway between the two frames'
    centres; the compression makes a hard onset peak up to 6 ms before its true time (the first energy
    entering the window counts most), a 6 ms attack about 2 ms before. Only windows wholly inside the clip
    are used (no padding), so sound that starts with the clip is not an onset at time 0.
    """
    if not isinstance(sample_rate, int | np.integer) or sample_rate <= 0:
        raise ValueError(f"sample_rate must be a positive integer, got {sample_rate!r}")
    signal = torch.from_numpy(mono(audio))
    window_length = max(32, round(window_seconds * sample_rate))
    hop = max(1, round(hop_seconds * sample_rate))
    if signal.numel() <= window_length:
        return Envelope(np.zeros(0), np.zeros(0))
    window = torch.hann_window(window_length, dtype=torch.float64)
    spectrum = torch.stft(
        signal,
        n_fft=window_length,
        hop_length=hop,
        window=window,
        center=False,
        return_complex=True,
    )  # (bins, frames)
    bands = torch.from_numpy(_mel_bands(window_length, sample_rate))  # (bins, bands), each summing to 1
    magnitude = torch.sqrt(bands.T @ (spectrum.abs() ** 2)) / window.sum()  # (bands, frames)
    level = torch.log1p(ONSET_COMPRESSION * magnitude)
    flux = torch.clamp(torch.diff(level, dim=1), min=0).sum(dim=0).numpy()
    times = ((np.arange(1, len(flux) + 1) - 0.5) * hop + window_length / 2) / sample_rate
    return Envelope(flux, times)


@functools.lru_cache(maxsize=8)
def _mel_bands(window_length: int, sample_rate: int) -> np.ndarray:
    """(bins, ONSET_BANDS) triangular mel filters over the STFT's bins, each normalised to sum to 1."""
    from transformers.audio_utils import mel_filter_bank

    filters = mel_filter_bank(
        num_frequency_bins=window_length // 2 + 1,
        num_mel_filters=ONSET_BANDS,
        min_frequency=ONSET_MIN_HZ,
        max_frequency=sample_rate / 2,
        sampling_rate=sample_rate,
        norm=None,
        mel_scale="htk",
    )
    return filters / np.maximum(filters.sum(axis=0, keepdims=True), 1e-12)
