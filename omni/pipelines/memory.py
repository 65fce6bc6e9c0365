"""Refuse a generation that would not fit in memory before allocating it, and say what would fit.

The estimate covers what grows with the request: the transformer's activations for every guidance row
(tokens x (hidden, q/k/v, FFN) in the compute dtype; attention itself runs in memory-efficient kernels), the
VAE decoder's working set for one latent frame at full resolution, and the decoded outputs. Weights are
already resident and are not counted.
"""

from __future__ import annotations

import os

import torch

from omni.media import geometry

SAFETY = 1.5  # allocator overhead and temporaries the estimate does not model
DECODER_WORKING_COPIES = (
    6  # activations of the widest decoder stage held at once, per latent frame (4 frames)
)


def available_bytes(device: torch.device) -> int:
    """Free memory on `device`: CUDA's free memory, or the OS's MemAvailable (env OMNI_MEMORY_LIMIT_GB caps it)."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        available = free
    else:
        available = _meminfo_available()
    limit = os.environ.get("OMNI_MEMORY_LIMIT_GB")
    if limit:
        available = min(available, int(float(limit) * 2**30))
    return available


def _meminfo_available() -> int:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 2**62  # unknown: do not refuse


def estimate_bytes(
    pipe, frames: int, height: int, width: int, audio_seconds: float, rows: int
) -> dict[str, int]:
    """Bytes per part for a clip of `frames` frames at height x width with `audio_seconds` of audio."""
    cfg = pipe.transformer.config
    dim = cfg.num_attention_heads * cfg.attention_head_dim
    ffn = max(cfg.ffn_dim, cfg.audio_ffn_dim or 0)
    temporal, spatial = pipe.vae_temporal, pipe.vae.config.scale_factor_spatial
    patch = cfg.patch_size
    video_tokens = (
        geometry.latent_frames(frames, temporal)
        * (height // spatial // patch[1])
        * (width // spatial // patch[2])
    )
    audio_tokens = (
        pipe.audio_latent_frames(round(audio_seconds * pipe.mel_config.sample_rate)) if audio_seconds else 0
    )
    tokens = video_tokens + audio_tokens
    activation = torch.finfo(pipe.transformer.dtype).bits // 8
    transformer = rows * tokens * (8 * dim + 2 * ffn) * max(activation, 4)
    if hasattr(pipe.vae.config, "base_dim"):  # a learned decoder's widest activations
        widest = pipe.vae.config.base_dim * max(pipe.vae.config.dim_mult)
        decoder = DECODER_WORKING_COPIES * widest * temporal * height * width * 4
    else:  # a fixed codec rearranges the latents: one copy of the frames
        decoder = max(frames, 1) * height * width * 3 * 4
    outputs = frames * height * width * 3 * (1 + 4) + int(audio_seconds * pipe.sample_rate) * 4 * 4
    return {"transformer": transformer, "vae_decode": decoder, "outputs": outputs}


def check_fits(
    pipe, frames: int, height: int, width: int, audio_seconds: float, rows: int, fps: float
) -> None:
    """Raise MemoryError (a clear message with the estimate and the longest clip that fits) when the request
    would not fit in the memory available on the pipeline's device."""
    device = pipe._execution_device
    parts = estimate_bytes(pipe, frames, height, width, audio_seconds, rows)
    needed = int(SAFETY * sum(parts.values()))
    available = available_bytes(device)
    if needed <= available:
        return
    low, high = 1, frames
    while low < high:  # longest clip that fits at this size
        mid = (low + high + 1) // 2
        seconds = mid / fps
        fits = (
            SAFETY * sum(estimate_bytes(pipe, mid, height, width, min(audio_seconds, seconds), rows).values())
            <= available
        )
        low, high = (mid, high) if fits else (low, mid - 1)
    detail = ", ".join(f"{k} {_size(v)}" for k, v in parts.items())
    raise MemoryError(
        f"this request needs about {_size(needed)} ({detail}, x{SAFETY} headroom) but {device} has "
        f"{_size(available)} free; at {width}x{height} about {low / fps:.1f} s ({low} frames) fits - "
        "ask for less, a smaller size, lower guidance (fewer batched rows) or use `extend` to grow a clip"
    )


def _size(count: int) -> str:
    return f"{count / 2**30:.2f} GiB" if count >= 2**30 else f"{count / 2**20:.1f} MiB"
