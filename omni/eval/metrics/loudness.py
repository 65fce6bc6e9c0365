"""Loudness and level of a soundtrack: integrated loudness (ITU-R BS.1770-4 / EBU R128), silence, clipping.

Loudness follows BS.1770-4: K-weighting (a high-shelf "pre-filter" then the RLB high-pass, both biquads
derived here for any sample rate from their analog prototypes, as libebur128 does), mean square per
channel over 400 ms blocks that start every 100 ms (75% overlap), a weighted channel sum, an absolute
gate at -70 LUFS and a relative gate 10 LU under the loudness of the blocks that pass it.

Channel weights: 1.0 for every channel of mono and stereo audio and for L, R, C of 5.1 (in the order
L R C LFE Ls Rs), 1.41 for Ls and Rs, 0 for the LFE. Mono is NOT counted twice ("dual mono"): a full-scale
1 kHz sine reads -3.01 LUFS in mono and 0.0 LUFS in both channels of a stereo file, as BS.1770 specifies.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

# Analog prototypes of the two K-weighting stages (BS.1770-4 Annex 1, as parameterised by libebur128).
SHELF_HZ, SHELF_GAIN_DB, SHELF_Q = 1681.974450955533, 3.999843853973347, 0.7071752369554196
HIGHPASS_HZ, HIGHPASS_Q = 38.13547087602444, 0.5003270373238773

BLOCK_SECONDS = 0.4
BLOCK_STEP_SECONDS = 0.1  # 75% overlap
ABSOLUTE_GATE_LUFS = -70.0
RELATIVE_GATE_LU = -10.0
LOUDNESS_OFFSET_DB = -0.691  # makes a 997 Hz full-scale sine in one front channel read -3.01 LUFS

SURROUND_WEIGHT = 1.41
WEIGHTS_5_1 = (1.0, 1.0, 1.0, 0.0, SURROUND_WEIGHT, SURROUND_WEIGHT)  # L R C LFE Ls Rs
STANDARD_WEIGHTS = {1: (1.0,), 2: (1.0, 1.0), 6: WEIGHTS_5_1}  # by channel count

SILENCE_WINDOW_SECONDS = 0.05
SILENCE_DBFS = -60.0  # a 50 ms window whose RMS over all channels stays under this is silent
CLIPPING_LEVEL = 0.999  # samples at or above this magnitude (about -0.01 dBFS) count as clipped
# The K-weighting filters run in the frequency domain on a signal padded with this much silence: the
# high-pass's impulse response decays below 1e-12 of its peak within 0.3 s, so the result equals the
# recursive filter's to float precision.
FILTER_PADDING_SECONDS = 1.0


@dataclass(frozen=True)
class Biquad:
    """A second-order IIR section: b = (b0, b1, b2), a = (1, a1, a2)."""

    b: tuple[float, float, float]
    a: tuple[float, float, float]

    def response(self, frequencies_hz: np.ndarray, sample_rate: int) -> np.ndarray:
        """Complex frequency response at `frequencies_hz`."""
        z = np.exp(-2j * np.pi * np.asarray(frequencies_hz) / sample_rate)  # z^-1
        return np.polyval(self.b[::-1], z) / np.polyval(self.a[::-1], z)


def k_weighting(sample_rate: int) -> tuple[Biquad, Biquad]:
    """The two K-weighting biquads (pre-filter shelf, RLB high-pass) for `sample_rate`, by the bilinear
    transform of the analog prototypes. At 48 kHz they equal BS.1770-4's tabulated coefficients."""
    if not isinstance(sample_rate, int | np.integer) or sample_rate <= 0:
        raise ValueError(f"sample_rate must be a positive integer, got {sample_rate!r}")
    k = math.tan(math.pi * SHELF_HZ / sample_rate)
    vh = 10 ** (SHELF_GAIN_DB / 20)
    vb = vh**0.4996667741545416
    a0 = 1 + k / SHELF_Q + k * k
    shelf = Biquad(
        b=((vh + vb * k / SHELF_Q + k * k) / a0, 2 * (k * k - vh) / a0, (vh - vb * k / SHELF_Q + k * k) / a0),
        a=(1.0, 2 * (k * k - 1) / a0, (1 - k / SHELF_Q + k * k) / a0),
    )
    k = math.tan(math.pi * HIGHPASS_HZ / sample_rate)
    a0 = 1 + k / HIGHPASS_Q + k * k
    highpass = Biquad(b=(1.0, -2.0, 1.0), a=(1.0, 2 * (k * k - 1) / a0, (1 - k / HIGHPASS_Q + k * k) / a0))
    return shelf, highpass


def k_weighted(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    """(C, N) float64: (C, N) or (N,) audio through both K-weighting stages (causal, from silence)."""
    audio = _channels(audio)
    length = audio.shape[1]
    size = length + round(FILTER_PADDING_SECONDS * sample_rate)
    frequencies = np.fft.rfftfreq(size, 1 / sample_rate)
    shelf, highpass = k_weighting(sample_rate)
    gain = shelf.response(frequencies, sample_rate) * highpass.response(frequencies, sample_rate)
    return np.fft.irfft(np.fft.rfft(audio, size, axis=1) * gain, size, axis=1)[:, :length]


def channel_weights(num_channels: int) -> tuple[float, ...]:
    """BS.1770 weights for mono, stereo and 5.1 (L R C LFE Ls Rs); other layouts are ambiguous."""
    if num_channels in STANDARD_WEIGHTS:
        return STANDARD_WEIGHTS[num_channels]
    raise ValueError(
        f"no standard channel weights for {num_channels} channels: give 1 (mono), 2 (stereo) or 6 "
        "(5.1 as L R C LFE Ls Rs), or pass weights explicitly"
    )


def integrated_loudness(
    audio: np.ndarray, sample_rate: int, weights: tuple[float, ...] | None = None
) -> float:
    """Gated integrated loudness in LUFS of (C, N) or (N,) audio in [-1, 1] full scale.

    NaN when the audio is shorter than one 400 ms block or no block passes the absolute gate (silence):
    BS.1770 leaves the loudness undefined there.
    """
    filtered = k_weighted(audio, sample_rate)
    weights = channel_weights(filtered.shape[0]) if weights is None else tuple(weights)
    if len(weights) != filtered.shape[0]:
        raise ValueError(f"got {len(weights)} channel weights for {filtered.shape[0]} channels")
    block, step = round(BLOCK_SECONDS * sample_rate), round(BLOCK_STEP_SECONDS * sample_rate)
    if filtered.shape[1] < block:
        return float("nan")
    # Mean square of every block from a running sum of squares: (C, blocks).
    cumulative = np.concatenate([np.zeros((filtered.shape[0], 1)), np.cumsum(filtered**2, axis=1)], axis=1)
    starts = np.arange(0, filtered.shape[1] - block + 1, step)
    mean_square = (cumulative[:, starts + block] - cumulative[:, starts]) / block
    power = np.asarray(weights) @ mean_square  # (blocks,)
    with np.errstate(divide="ignore"):
        block_loudness = LOUDNESS_OFFSET_DB + 10 * np.log10(power)
    above_absolute = power[block_loudness > ABSOLUTE_GATE_LUFS]
    if above_absolute.size == 0:
        return float("nan")
    relative_gate = LOUDNESS_OFFSET_DB + 10 * np.log10(above_absolute.mean()) + RELATIVE_GATE_LU
    gated = power[(block_loudness > ABSOLUTE_GATE_LUFS) & (block_loudness > relative_gate)]
    return float(LOUDNESS_OFFSET_DB + 10 * np.log10(gated.mean()))


def silence_ratio(audio: np.ndarray, sample_rate: int, threshold_dbfs: float = SILENCE_DBFS) -> float:
    """Share of 50 ms windows whose RMS over all channels is below `threshold_dbfs` (NaN for no audio)."""
    audio = _channels(audio)
    window = max(1, round(SILENCE_WINDOW_SECONDS * sample_rate))
    count = audio.shape[1] // window
    if count == 0:
        return float("nan")
    windows = audio[:, : count * window].reshape(audio.shape[0], count, window)
    rms = np.sqrt(np.mean(windows**2, axis=(0, 2)))
    return float(np.mean(rms < 10 ** (threshold_dbfs / 20)))


def clipping_ratio(audio: np.ndarray, level: float = CLIPPING_LEVEL) -> float:
    """Share of samples (over all channels) whose magnitude reaches `level` of full scale."""
    audio = _channels(audio)
    return float(np.mean(np.abs(audio) >= level)) if audio.size else float("nan")


def peak_dbfs(audio: np.ndarray) -> float:
    """Highest sample magnitude in dBFS (-inf for digital silence)."""
    peak = float(np.max(np.abs(_channels(audio)), initial=0.0))
    return 20 * math.log10(peak) if peak > 0 else float("-inf")


def _channels(audio: np.ndarray) -> np.ndarray:
    """(C, N) float64 from (N,) or (C, N), refusing NaN / inf."""
    audio = np.asarray(audio, dtype=np.float64)
    if audio.ndim == 1:
        audio = audio[None]
    if audio.ndim != 2:
        raise ValueError(f"audio must be (N,) or (C, N), got shape {audio.shape}")
    if not np.isfinite(audio).all():
        raise ValueError("audio holds NaN or infinite samples")
    return audio
