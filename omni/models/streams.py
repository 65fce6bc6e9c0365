"""The latent token streams the transformer denoises together."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

MODALITIES = ("video", "image", "audio")
# Image tokens share the video expert's weights (plus an image modality embedding).
EXPERT_OF_MODALITY = {"video": "video", "image": "video", "audio": "audio"}
EXPERTS = ("video", "audio")


@dataclass(frozen=True)
class LatentStream:
    """One modality's latents entering the transformer, with a noise level per token.

    Attributes:
        modality: "video", "image" (a 1-frame video with the image flag) or "audio".
        latents: video/image (B, C, F, H, W) from the video VAE, F == 1 for images;
            audio (B, C, T, M) from the audio VAE (T latent frames, M latent mel bins).
        timesteps: noise level x 1000 (0 = clean condition, 1000 = pure noise), given per sample (B,),
            per latent frame (B, F) or, for video/image, per token (B, F, H / patch_h, W / patch_w).
        start_seconds: clip time of latent frame 0. Reference images sit at times outside the clip.
        frame_seconds: seconds between consecutive latent frames (video: temporal compression / fps;
            audio: temporal compression * hop / sample rate). Ignored for single-frame streams.
        token_mask: optional bool with the granularity of `timesteps`; False removes those tokens from
            attention (how a dropped condition or a padded sample is expressed).
        control: optional (B, Cc, F, H, W) motion-control maps on a video stream's latent grid
            (`omni.conditioning.motion.control_maps`), added to its tokens by the video expert.
        self_condition: optional estimate of the clean latents, shaped like `latents`, from the model's own
            previous prediction (`sample_estimate`); a model built with `self_condition` reads it beside
            the noisy latents. None reads as zeros (no estimate yet).
    """

    modality: str
    latents: Tensor
    timesteps: Tensor
    start_seconds: float = 0.0
    frame_seconds: float = 0.25
    token_mask: Tensor | None = None
    control: Tensor | None = None
    self_condition: Tensor | None = None

    def __post_init__(self) -> None:
        if self.modality not in MODALITIES:
            raise ValueError(f"unknown modality {self.modality!r}; choose one of {list(MODALITIES)}")
        want = 4 if self.modality == "audio" else 5
        if self.latents.ndim != want:
            layout = "(B, C, T, M)" if self.modality == "audio" else "(B, C, F, H, W)"
            raise ValueError(
                f"{self.modality} latents must be {layout}, got shape {tuple(self.latents.shape)}"
            )
        if self.modality == "image" and self.latents.shape[2] != 1:
            raise ValueError(f"image latents must have one frame, got {self.latents.shape[2]}")
        if self.control is not None and (
            self.modality != "video"
            or self.control.ndim != 5
            or self.control.shape[2:] != self.latents.shape[2:]
        ):
            raise ValueError(
                f"control maps go with video latents of the same grid: got {tuple(self.control.shape)} for "
                f"{self.modality} latents {tuple(self.latents.shape)}"
            )
        if self.self_condition is not None and self.self_condition.shape != self.latents.shape:
            raise ValueError(
                f"a {self.modality} stream's self-condition estimate must be shaped like its latents "
                f"{tuple(self.latents.shape)}, got {tuple(self.self_condition.shape)}"
            )
        if self.timesteps.shape[0] != self.latents.shape[0]:
            raise ValueError(
                f"{self.modality} timesteps batch {self.timesteps.shape[0]} != latents batch {self.latents.shape[0]}"
            )

    @property
    def expert(self) -> str:
        return EXPERT_OF_MODALITY[self.modality]

    @property
    def num_frames(self) -> int:
        return self.latents.shape[2]

    def token_grid(self, patch_size: tuple[int, int, int]) -> tuple[int, int, int]:
        """(frames, rows, cols) of tokens; audio has one token per latent frame."""
        if self.modality == "audio":
            return self.latents.shape[2], 1, 1
        pt, ph, pw = patch_size
        _, _, f, h, w = self.latents.shape
        if f % pt or h % ph or w % pw:
            raise ValueError(
                f"{self.modality} latent grid (F={f}, H={h}, W={w}) is not divisible by patch size {patch_size}"
            )
        return f // pt, h // ph, w // pw

    def token_positions(self, patch_size: tuple[int, int, int], time_scale: float) -> Tensor:
        """(L, 3) float64 RoPE positions (t, h, w); t is seconds x `time_scale` on the shared clip clock."""
        frames, rows, cols = self.token_grid(patch_size)
        step = self.frame_seconds * (patch_size[0] if self.modality != "audio" else 1)
        t = (self.start_seconds + step * torch.arange(frames, dtype=torch.float64)) * time_scale
        h = torch.arange(rows, dtype=torch.float64)
        w = torch.arange(cols, dtype=torch.float64)
        grid = torch.stack(torch.meshgrid(t, h, w, indexing="ij"), dim=-1)  # (F, H, W, 3)
        return grid.reshape(-1, 3)

    def noise_levels(self, patch_size: tuple[int, int, int]) -> Tensor:
        """Each latent element's noise level (timestep / 1000) as float32, broadcastable against `latents`."""
        frames, rows, cols = self.token_grid(patch_size)
        sigma = self.per_token(self.timesteps.float() / 1000, patch_size).reshape(-1, frames, rows, cols)
        if self.modality == "audio":
            return sigma.reshape(-1, 1, frames, 1)  # one token per latent frame, all mel bins
        pt, ph, pw = patch_size
        return sigma.repeat_interleave(pt, 1).repeat_interleave(ph, 2).repeat_interleave(pw, 3)[:, None]

    def sample_estimate(self, velocity: Tensor, patch_size: tuple[int, int, int]) -> Tensor:
        """The clean latents a predicted flow velocity points to, x_0 = x_t - sigma * v, as float32 (exact
        where a token is clean: its sigma is 0)."""
        sigma = self.noise_levels(patch_size).to(velocity.device)
        return self.latents.float() - sigma * velocity.float()

    def per_token(self, values: Tensor, patch_size: tuple[int, int, int]) -> Tensor:
        """Expand per-sample / per-frame / per-token `values` to (B, L) in token order."""
        frames, rows, cols = self.token_grid(patch_size)
        batch = self.latents.shape[0]
        if values.ndim == 1:
            return values[:, None].expand(batch, frames * rows * cols)
        if values.ndim == 2:
            if values.shape[1] != frames:
                raise ValueError(
                    f"{self.modality}: per-frame values have {values.shape[1]} frames, expected {frames}"
                )
            return values[:, :, None].expand(batch, frames, rows * cols).reshape(batch, -1)
        if values.shape[1:] != (frames, rows, cols):
            raise ValueError(
                f"{self.modality}: per-token values have shape {tuple(values.shape[1:])}, "
                f"expected {(frames, rows, cols)}"
            )
        return values.reshape(batch, -1)


def frame_noise(
    shape: tuple[int, ...],
    generator: torch.Generator | None,
    shared: float = 0.0,
    device: torch.device | str | None = None,
) -> Tensor:
    """Standard normal noise for latents `shape`; for video (B, C, F, H, W) with F > 1, a share `shared` of
    each value's variance is common to all latent frames (the rest drawn per frame), so every value still has
    unit variance and frames start out alike (the mixed noise of video diffusion models).

    A model learns under one noise and must be sampled with the same: `OmniTransformer`'s
    `shared_frame_noise` records it, and its share is passed for every stream: `shared` 0, a single frame (an
    image) or a 4-D shape (sound) draws exactly `torch.randn(shape)`.
    """
    if not 0.0 <= shared < 1.0:
        raise ValueError(f"shared frame noise must be a variance share in [0, 1), got {shared}")
    device = device if device is not None else (generator.device if generator is not None else "cpu")
    noise = torch.randn(shape, generator=generator, device=device)
    if shared == 0.0 or len(shape) != 5 or shape[2] == 1:
        return noise
    common = torch.randn((*shape[:2], 1, *shape[3:]), generator=generator, device=device)
    return shared**0.5 * common + (1.0 - shared) ** 0.5 * noise


def learned_frame_noise(model) -> float:
    """The `shared_frame_noise` a model learned under: its config's value, 0 for a model without the option."""
    config = getattr(model, "config", None)
    value = (
        config.get("shared_frame_noise")
        if isinstance(config, dict)
        else getattr(config, "shared_frame_noise", None)
    )
    return float(value or 0.0)
