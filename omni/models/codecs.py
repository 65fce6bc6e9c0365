"""Codecs that need no training: an exactly invertible pixel codec for video and log-mel with a fixed inverse.

They stand behind the same interface the pipeline uses for diffusers' `AutoencoderKLWan`,
`AutoencoderKLLTX2Audio` and `LTX2Vocoder` (`encode(x).latent_dist.mode()`, `decode(z).sample`, the same
config keys), so a preset swaps them in and nothing else changes. At 64x64 pixel-space diffusion is the
standard choice, and the toy world's beeps survive log-mel and Griffin-Lim with their onsets and pitches.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin
from einops import rearrange
from torch import Tensor, nn
from transformers.audio_utils import mel_filter_bank


@dataclass(frozen=True)
class ExactLatents:
    """A deterministic "distribution": what `AutoencoderKL*.encode(x).latent_dist` offers, without noise."""

    latents: Tensor

    def mode(self) -> Tensor:
        return self.latents

    def sample(self, generator: torch.Generator | None = None) -> Tensor:
        return self.latents


@dataclass(frozen=True)
class EncoderOutput:
    latent_dist: ExactLatents


@dataclass(frozen=True)
class DecoderOutput:
    sample: Tensor


class PixelVideoCodec(ModelMixin, ConfigMixin):
    """Space-time-to-depth on pixels: (B, 3, 1 + t k, H, W) in [-1, 1] <-> (B, 3 t s^2, 1 + k, H / s, W / s).

    Causal like the Wan VAE: latent frame 0 holds frame 0 alone (repeated in its t time slots, so images and
    clip starts share one layout), latent frame i > 0 holds frames t (i - 1) + 1 .. t i. Decoding inverts
    encoding exactly for every clip in [-1, 1]. Latents are normalised by `latents_mean` / `latents_std`
    in the pipeline, as for the Wan VAE.
    """

    @register_to_config
    def __init__(
        self,
        scale_factor_temporal: int = 2,
        scale_factor_spatial: int = 2,
        in_channels: int = 3,
        latents_mean: list[float] | None = None,
        latents_std: list[float] | None = None,
        z_dim: int | None = None,
    ):
        super().__init__()
        factors = (
            ("scale_factor_temporal", scale_factor_temporal),
            ("scale_factor_spatial", scale_factor_spatial),
        )
        for name, value in factors:
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        channels = in_channels * scale_factor_temporal * scale_factor_spatial**2
        if z_dim is not None and z_dim != channels:
            raise ValueError(f"z_dim is in_channels x t x s^2 = {channels} for this codec, got {z_dim}")
        for name, values in (("latents_mean", latents_mean), ("latents_std", latents_std)):
            if values is not None and len(values) != channels:
                raise ValueError(
                    f"{name} needs {channels} values (one per latent channel), got {len(values)}"
                )
        self.register_to_config(
            z_dim=channels,
            latents_mean=latents_mean or [0.0] * channels,
            latents_std=latents_std or [1.0] * channels,
        )
        # A parameter-free model still needs a tensor to carry its device and dtype (`ModelMixin.dtype`).
        self.register_buffer("anchor", torch.zeros(1))
        self.use_tiling = False

    def enable_tiling(self) -> None:
        """Nothing to tile: every latent depends on its own pixels only."""

    def disable_tiling(self) -> None:
        """Nothing to tile (see `enable_tiling`)."""

    def encode(self, x: Tensor) -> EncoderOutput:
        """(B, C, F, H, W) with F = 1 + t k, H and W multiples of s -> EncoderOutput (latents (B, z, 1 + k, H/s, W/s))."""
        t, s = self.config.scale_factor_temporal, self.config.scale_factor_spatial
        frames, height, width = x.shape[2:]
        if (frames - 1) % t or height % s or width % s:
            raise ValueError(
                f"the pixel codec needs 1 + {t}k frames and sizes that are multiples of {s}, "
                f"got {frames} frames of {height}x{width}"
            )
        first = x[:, :, :1].expand(-1, -1, t, -1, -1)  # frame 0 fills its latent frame's t slots
        x = torch.cat([first, x[:, :, 1:]], dim=2)
        z = rearrange(x, "b c (f pt) (h ph) (w pw) -> b (pt ph pw c) f h w", pt=t, ph=s, pw=s)
        return EncoderOutput(ExactLatents(z))

    def decode(self, z: Tensor, return_dict: bool = True) -> DecoderOutput:
        """(B, z, f, h, w) -> DecoderOutput (frames (B, C, 1 + t (f - 1), h s, w s) clamped to [-1, 1])."""
        t, s = self.config.scale_factor_temporal, self.config.scale_factor_spatial
        x = rearrange(z, "b (pt ph pw c) f h w -> b c (f pt) (h ph) (w pw)", pt=t, ph=s, pw=s)
        first = x[:, :, :t].mean(dim=2, keepdim=True)  # the repeated frame 0
        return DecoderOutput(torch.cat([first, x[:, :, t:]], dim=2).clamp(-1, 1))


class MelAudioCodec(ModelMixin, ConfigMixin):
    """Log-mel frames grouped in time: (B, C, 1 + 4 k, M) <-> (B, 4 C, 1 + k, M), scaled to about unit variance.

    Causal like the LTX-2 audio VAE (`temporal_compression_ratio` mel frames a latent frame, the first alone
    and repeated), and exactly invertible. `log_mel_mean` / `log_mel_std` bring the log-mel values (about
    -11.5 in silence, up to +5 in a beep) near zero mean and unit variance.
    """

    @register_to_config
    def __init__(
        self,
        in_channels: int = 1,
        mel_bins: int = 64,
        sample_rate: int = 16000,
        mel_hop_length: int = 160,
        frames_per_latent: int = 4,
        log_mel_mean: float = 0.0,
        log_mel_std: float = 1.0,
        latent_channels: int | None = None,
    ):
        super().__init__()
        if log_mel_std <= 0:
            raise ValueError(f"log_mel_std must be positive, got {log_mel_std}")
        channels = in_channels * frames_per_latent
        if latent_channels is not None and latent_channels != channels:
            raise ValueError(
                f"latent_channels is in_channels x frames_per_latent = {channels}, got {latent_channels}"
            )
        self.register_to_config(latent_channels=channels)
        self.register_buffer("anchor", torch.zeros(1))

    @property
    def temporal_compression_ratio(self) -> int:
        return self.config.frames_per_latent

    @property
    def mel_compression_ratio(self) -> int:
        return 1

    def encode(self, mel: Tensor) -> EncoderOutput:
        """(B, C, T, M) log-mel with T = 1 + 4k -> EncoderOutput (latents (B, 4 C, 1 + k, M))."""
        r = self.config.frames_per_latent
        if (mel.shape[2] - 1) % r:
            raise ValueError(f"the mel codec needs 1 + {r}k mel frames, got {mel.shape[2]}")
        mel = torch.cat([mel[:, :, :1].expand(-1, -1, r, -1), mel[:, :, 1:]], dim=2)
        z = rearrange(mel, "b c (t r) m -> b (r c) t m", r=r)
        return EncoderOutput(ExactLatents((z - self.config.log_mel_mean) / self.config.log_mel_std))

    def decode(self, z: Tensor, return_dict: bool = True) -> DecoderOutput:
        """(B, 4 C, L, M) -> DecoderOutput (log-mel (B, C, 1 + 4 (L - 1), M))."""
        r = self.config.frames_per_latent
        mel = rearrange(
            z * self.config.log_mel_std + self.config.log_mel_mean, "b (r c) t m -> b c (t r) m", r=r
        )
        return DecoderOutput(torch.cat([mel[:, :, :r].mean(dim=2, keepdim=True), mel[:, :, r:]], dim=2))


class GriffinLimVocoder(ModelMixin, ConfigMixin):
    """Log-mel (B, C, T, M) -> waveform (B, C, T hop): the mel filters' pseudo-inverse, then fast Griffin-Lim.

    The mel frames are the causal ones of `omni.audio.mel.MelSpectrogram` (frame k ends at sample
    (k + 1) hop). The phase starts at zero and the iterations use momentum (fast Griffin-Lim): with a random
    start, half the clips gained a faint echo 45 ms before or 60 ms after a beep that read as a beep of its
    own; from zero, 1 clip in 48 at hop 128 (docs/research-log.md). The same mel gives the same waveform.
    """

    @register_to_config
    def __init__(
        self,
        in_channels: int = 64,
        output_sampling_rate: int = 16000,
        n_fft: int = 512,
        hop_length: int = 128,
        f_min: float = 0.0,
        f_max: float | None = None,
        iterations: int = 32,
        momentum: float = 0.99,
    ):
        super().__init__()
        filters = mel_filter_bank(
            num_frequency_bins=n_fft // 2 + 1,
            num_mel_filters=in_channels,
            min_frequency=f_min,
            max_frequency=f_max or output_sampling_rate / 2,
            sampling_rate=output_sampling_rate,
            norm=None,
            mel_scale="htk",
        )
        inverse = torch.linalg.pinv(torch.from_numpy(filters).double()).float()  # (M, F)
        self.register_buffer("inverse_filters", inverse, persistent=False)
        self.register_buffer("window", torch.hann_window(n_fft), persistent=False)
        self.register_buffer("anchor", torch.zeros(1))

    @torch.no_grad()
    def forward(self, log_mel: Tensor) -> Tensor:
        cfg = self.config
        batch, channels, frames, _ = log_mel.shape
        power = (log_mel.float().exp() @ self.inverse_filters).clamp(min=0)  # (B, C, T, F)
        magnitude = power.sqrt().flatten(0, 1).transpose(1, 2)  # (B*C, F, T)
        length = frames * cfg.hop_length
        stft = dict(n_fft=cfg.n_fft, hop_length=cfg.hop_length, window=self.window, center=True)
        spectrum = magnitude.to(torch.complex64)  # zero phase
        previous = torch.zeros_like(spectrum)
        for _ in range(cfg.iterations):
            signal = torch.istft(spectrum, length=length, **stft)
            rebuilt = torch.stft(signal, return_complex=True, **stft)[..., :frames]
            accelerated = rebuilt - previous * (cfg.momentum / (1 + cfg.momentum))
            previous = rebuilt
            spectrum = magnitude * accelerated / accelerated.abs().clamp(min=1e-8)
        # Centred frame k is centred at k hop; the causal frame k at (k + 1) hop - n_fft / 2: shift by the gap.
        delay = cfg.n_fft // 2 - cfg.hop_length
        padded = nn.functional.pad(spectrum, (0, 1))  # a silent frame covers the shifted tail
        signal = torch.istft(padded, length=length + delay, **stft)[:, delay:]
        return signal.reshape(batch, channels, length).to(log_mel.dtype)
