"""3D rotary position embedding (t, h, w) in Wan's layout: interleaved pairs, axis split t | h | w.

Positions are floats, so the time axis can hold seconds scaled to one unit per video latent frame and audio
tokens fall between video frames on the same scale. Angles are computed in float64 (float32 where the device
has no float64) and returned as float32, as Wan does.
"""

from __future__ import annotations

import torch
from torch import Tensor


def rope_axis_dims(head_dim: int) -> tuple[int, int, int]:
    """Channels per axis (t, h, w) for one head: h and w get 2 * (head_dim // 6) each, t the rest (Wan)."""
    if head_dim % 2:
        raise ValueError(f"attention head dim must be even for rotary embedding, got {head_dim}")
    hw = 2 * (head_dim // 6)
    return head_dim - 2 * hw, hw, hw


def rope_frequencies(positions: Tensor, head_dim: int, theta: float = 10000.0) -> tuple[Tensor, Tensor]:
    """Rotation angles for `positions` (..., 3) = (t, h, w).

    Returns (cos, sin), each (..., head_dim // 2) float32: one angle per channel pair.
    """
    dtype = torch.float32 if positions.device.type == "mps" else torch.float64
    positions = positions.to(dtype)
    angles = []
    for axis, dim in enumerate(rope_axis_dims(head_dim)):
        inv_freq = 1.0 / theta ** (torch.arange(0, dim, 2, dtype=dtype, device=positions.device) / dim)
        angles.append(positions[..., axis, None] * inv_freq)
    angles = torch.cat(angles, dim=-1)
    return angles.cos().float(), angles.sin().float()


def apply_rope(x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
    """Rotate channel pairs (2i, 2i+1) of x (B, L, H, D) by angles given as cos/sin (B or 1, L, 1, D/2).

    Each pair is a complex number times cos + i sin: one multiplication over x, where the same rotation
    written with real halves and a stack takes eight passes (ten times longer on a CPU at small shapes).
    """
    pairs = torch.view_as_complex(x.float().unflatten(-1, (-1, 2)).contiguous())  # (B, L, H, D/2) fp32 pairs
    rotated = torch.view_as_real(pairs * torch.complex(cos.float(), sin.float()))  # (B, L, H, D/2, 2)
    return rotated.flatten(-2).type_as(x)
