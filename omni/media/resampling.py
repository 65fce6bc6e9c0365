"""Band-limited audio resampling: a Kaiser-windowed sinc applied as a polyphase filter in torch."""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from omni.media.errors import MediaError

# Zero crossings of the sinc on each side, cutoff as a fraction of the lower Nyquist rate, and the
# Kaiser beta: librosa / torchaudio's "kaiser_best" settings (stop band below -100 dB).
SINC_ZERO_CROSSINGS = 64
ROLLOFF = 0.9475937167399596
KAISER_BETA = 14.769656459379492


def resample(audio: np.ndarray | Tensor, orig_rate: int, new_rate: int) -> np.ndarray | Tensor:
    """(..., N) audio at `orig_rate` as (..., ceil(N * new_rate / orig_rate)) at `new_rate`.

    Sample 0 keeps its time (zero-delay filter); content above the lower of the two Nyquist rates
    is removed rather than aliased. NumPy in gives NumPy out (same dtype), a tensor gives a tensor.
    """
    for name, rate in (("orig_rate", orig_rate), ("new_rate", new_rate)):
        if not isinstance(rate, int | np.integer) or rate <= 0:
            raise MediaError(f"{name} must be a positive integer number of samples per second, got {rate!r}")
    if isinstance(audio, np.ndarray):
        return resample(torch.from_numpy(np.ascontiguousarray(audio)), orig_rate, new_rate).numpy()
    if not audio.is_floating_point():
        raise MediaError(f"audio to resample must be floating point, got {audio.dtype}")
    if orig_rate == new_rate:
        return audio
    divisor = math.gcd(orig_rate, new_rate)
    orig, new = orig_rate // divisor, new_rate // divisor
    kernels, width = _sinc_kernels(orig, new)
    length = audio.shape[-1]
    signal = F.pad(audio.reshape(-1, 1, length).to(torch.float64), (width, width + orig))  # (B, 1, N + pad)
    phases = F.conv1d(signal, kernels.to(signal.device), stride=orig)  # (B, new, T): one row per output phase
    out = phases.transpose(1, 2).reshape(signal.shape[0], -1)[:, : math.ceil(new * length / orig)]
    return out.reshape(*audio.shape[:-1], -1).to(audio.dtype)


def _sinc_kernels(orig: int, new: int) -> tuple[Tensor, int]:
    """(new, 1, 2 * width + orig) float64 filters, one per output phase, and the padding `width`."""
    # Times are in units of `orig` input samples (= `new` output samples); sinc(cutoff * t) passes up to
    # cutoff / 2 cycles per unit: ROLLOFF times the lower of the two Nyquist rates.
    cutoff = min(orig, new) * ROLLOFF
    width = math.ceil(SINC_ZERO_CROSSINGS * orig / cutoff)
    taps = torch.arange(-width, width + orig, dtype=torch.float64) / orig  # (K,) input times
    phase = -torch.arange(new, dtype=torch.float64)[:, None] / new  # (new, 1) output times
    t = ((taps + phase) * cutoff).clamp(-SINC_ZERO_CROSSINGS, SINC_ZERO_CROSSINGS)  # (new, K)
    window = torch.i0(KAISER_BETA * torch.sqrt(1 - (t / SINC_ZERO_CROSSINGS) ** 2))
    window = window / torch.i0(torch.tensor(KAISER_BETA, dtype=torch.float64))
    return (torch.sinc(t) * window * cutoff / orig)[:, None], width
