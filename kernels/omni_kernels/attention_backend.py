"""Registers the Triton flash-attention kernels as the `triton` backend of `omni.ops.attention`.

omni imports this module when `omni_kernels` is installed; an ImportError (no triton) leaves the backend
unregistered. The backend runs on CUDA, and on the CPU only under `TRITON_INTERPRET=1` (tests).
"""

from __future__ import annotations

import torch
from torch import Tensor

from omni.ops.attention import AttentionBackend, register_backend
from omni_kernels._triton import INTERPRET
from omni_kernels.attention import MAX_HEAD_DIM, flash_attention


def triton_attention(
    q: Tensor, k: Tensor, v: Tensor, key_padding_mask: Tensor | None, rope: tuple[Tensor, Tensor] | None
) -> Tensor:
    """The dispatch signature: q (B, Lq, H, D), k/v (B, Lk, H, D), mask (B, Lk) bool, rope (cos, sin)."""
    return flash_attention(q, k, v, key_padding_mask=key_padding_mask, rope=rope)


register_backend(
    AttentionBackend(
        name="triton",
        fn=triton_attention,
        devices=frozenset({"cuda", "cpu"} if INTERPRET else {"cuda"}),
        dtypes=frozenset({torch.float32, torch.float16, torch.bfloat16}),
        max_head_dim=MAX_HEAD_DIM,
        supports_key_padding_mask=True,
        supports_rope=True,
        description="omni_kernels fused flash attention (Triton): masks skip key blocks, RoPE fused",
    )
)
