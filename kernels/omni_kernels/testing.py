"""References and the accuracy rule the kernel tests (and the benchmark's sanity checks) use.

The rule is flash-attention's: a kernel passes when its largest error against an fp32 reference is at most
twice the largest error of the same op computed by PyTorch in the low precision, plus a tiny epsilon where
the result is fp32 (there PyTorch's own error is a few ulps and summation order alone can exceed 2x).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from omni.ops.rope import apply_rope
from omni_kernels._triton import INTERPRET

# Where kernel tests run: the GPU when there is one, else CPU tensors under the Triton interpreter.
DEVICE = torch.device("cuda" if torch.cuda.is_available() else "cpu")


def kernels_cannot_run_reason() -> str | None:
    """Why the kernels cannot run in this process, or None: no CUDA, and triton was loaded compiling."""
    if DEVICE.type == "cuda" or INTERPRET:
        return None
    return (
        "no CUDA device and omni_kernels was loaded without TRITON_INTERPRET=1; set it before importing omni "
        "or omni_kernels (the repo's root conftest.py does so for pytest)"
    )


def attention_ref(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    *,
    key_padding_mask: Tensor | None = None,
    seqlens_q: Tensor | None = None,
    seqlens_k: Tensor | None = None,
    rope: tuple[Tensor, Tensor] | None = None,
    upcast: bool = True,
) -> Tensor:
    """Attention as plain PyTorch ops, in fp32 (`upcast`) or in the inputs' dtype, as `flash_attention` defines it.

    q (B, Lq, H, D), k/v (B, Lk, H, D) -> (B, Lq, H, D). Low precision means matmuls in the input dtype and the
    probabilities rounded to it (softmax itself in fp32), as flash-attention's reference does.
    """
    dtype = q.dtype
    if upcast:
        q, k, v = q.float(), k.float(), v.float()
    if rope is not None:
        q, k = apply_rope(q, *rope), apply_rope(k, *rope)
    batch, lq, _, head_dim = q.shape
    lk = k.shape[1]
    scores = torch.einsum("bqhd,bkhd->bhqk", q, k) / math.sqrt(head_dim)
    allowed = torch.ones(batch, lk, dtype=torch.bool, device=q.device)
    if key_padding_mask is not None:
        allowed = allowed & key_padding_mask
    if seqlens_k is not None:
        allowed = allowed & (torch.arange(lk, device=q.device)[None] < seqlens_k[:, None])
    scores = scores.float().masked_fill(~allowed[:, None, None, :], float("-inf"))
    probs = torch.softmax(scores, dim=-1).nan_to_num(
        0.0
    )  # rows with no key give 0, as sdpa and the kernel do
    out = torch.einsum("bhqk,bkhd->bqhd", probs.to(v.dtype), v)
    if seqlens_q is not None:
        rows = torch.arange(lq, device=q.device)[None] < seqlens_q[:, None]  # (B, Lq)
        out = out * rows[:, :, None, None]
    return out if upcast else out.to(dtype)


def max_error(x: Tensor, ref: Tensor) -> float:
    return (x.float() - ref.float()).abs().max().item()


def error_ratio(ours: Tensor, low: Tensor, ref: Tensor) -> float:
    """Our error over low-precision PyTorch's, both against the fp32 reference (inf when PyTorch's is 0)."""
    base = max_error(low, ref)
    err = max_error(ours, ref)
    return err / base if base > 0 else (0.0 if err == 0 else math.inf)


def assert_within_reference(name: str, ours: Tensor, low: Tensor, ref: Tensor, factor: float = 2.0) -> None:
    """Fail unless max|ours - ref| <= factor * max|low - ref| (+ a tiny epsilon when the result is fp32)."""
    err = max_error(ours, ref)
    base = max_error(low, ref)
    eps = 1e-5 * max(1.0, ref.abs().max().item()) if ours.dtype == torch.float32 else 0.0
    assert err <= factor * base + eps, (
        f"{name}: max error {err:.3e} against fp32 exceeds {factor}x PyTorch's low-precision error "
        f"{base:.3e} (+{eps:.1e})"
    )
