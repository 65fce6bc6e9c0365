"""Causal log-mel features: `torch.stft` + `transformers.audio_utils.mel_filter_bank` (HTK mel scale).

Frame k uses the window that ends at sample (k + 1) * hop, so a waveform of N samples gives ceil(N / hop)
frames and a feature never looks ahead of its time: the same causality as the audio VAE built on it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from transformers.audio_utils import mel_filter_bank


@dataclass(frozen=True)
class MelConfig:
    """Log-mel parameters shared by feature extraction (encoding) and the vocoder (decoding)."""

    sample_rate: int = 16000
    n_fft: int = 1024
    hop_length: int = 160
    n_mels: int = 64
    f_min: float = 0.0
    f_max: float | None = None  # None: Nyquist
    log_floor: float = 1e-5

    def __post_init__(self) -> None:
        if self.sample_rate <= 0 or self.hop_length <= 0 or self.n_mels <= 0:
            raise ValueError(f"mel config needs positive sample_rate, hop_length and n_mels, got {self}")
        if self.n_fft < self.hop_length:
            raise ValueError(f"mel n_fft ({self.n_fft}) must be at least hop_length ({self.hop_length})")

    def num_frames(self, num_samples: int) -> int:
        return math.ceil(num_samples / self.hop_length)


class MelSpectrogram(nn.Module):
    """(B, C, N) waveform in [-1, 1] -> (B, C, T, n_mels) log-mel, T = ceil(N / hop)."""

    def __init__(self, config: MelConfig):
        super().__init__()
        self.config = config
        filters = mel_filter_bank(
            num_frequency_bins=config.n_fft // 2 + 1,
            num_mel_filters=config.n_mels,
            min_frequency=config.f_min,
            max_frequency=config.f_max or config.sample_rate / 2,
            sampling_rate=config.sample_rate,
            norm=None,
            mel_scale="htk",
        )
        self.register_buffer("filters", torch.from_numpy(filters).float(), persistent=False)  # (F, n_mels)
        self.register_buffer("window", torch.hann_window(config.n_fft), persistent=False)

    def forward(self, waveform: Tensor) -> Tensor:
        cfg = self.config
        batch, channels, samples = waveform.shape
        frames = cfg.num_frames(samples)
        x = waveform.reshape(batch * channels, samples).float()
        # Left padding makes frame k end at (k + 1) * hop; right padding completes the last hop.
        x = nn.functional.pad(x, (cfg.n_fft - cfg.hop_length, frames * cfg.hop_length - samples))
        spec = torch.stft(
            x, cfg.n_fft, cfg.hop_length, window=self.window, center=False, return_complex=True
        )  # (B*C, F, T)
        power = spec.abs().pow(2)
        mel = torch.einsum("bft,fm->btm", power, self.filters)
        log_mel = torch.log(mel.clamp(min=cfg.log_floor))
        return log_mel.reshape(batch, channels, frames, cfg.n_mels)
