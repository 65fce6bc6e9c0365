"""Triton pieces shared by the kernels: interpreter awareness, rounding, RoPE pair rotation, tile loads.

Under `TRITON_INTERPRET=1` kernels run on CPU tensors through numpy, where bf16 arithmetic and `tl.dot` are
wrong and the fp32 -> bf16 cast truncates. The helpers here keep the kernels' numerics those of the GPU:
tiles are upcast to fp32 right after loading, and values are rounded to the storage dtype (round to nearest
even, by hand in the interpreter) exactly where the GPU rounds them, before tensor-core matmuls and stores.
"""

from __future__ import annotations

import os

import torch
import triton
import triton.language as tl

# Read once: `triton.jit` decides between compiling and interpreting when a kernel is defined.
INTERPRET = os.environ.get("TRITON_INTERPRET", "0") == "1"
_INTERPRET = tl.constexpr(INTERPRET)


def triton_device_ok(device: torch.device) -> bool:
    """Whether kernels can run on `device`: CUDA, or the CPU under the interpreter."""
    return device.type == "cuda" or (INTERPRET and device.type == "cpu")


def dot_precision(dtype: torch.dtype) -> str:
    """fp32 inputs get exact fp32 matmuls (not tf32), so fp32 results match PyTorch's fp32 to ~1e-6."""
    return "ieee" if dtype == torch.float32 else "tf32"


def row_block(num_cols: int, max_elements: int = 4096) -> tuple[int, int, int]:
    """(BLOCK_ROWS, BLOCK_COLS, num_warps) for a row-wise kernel over rows of `num_cols` elements."""
    block_cols = triton.next_power_of_2(num_cols)
    block_rows = max(1, min(16, max_elements // block_cols))
    num_warps = 4 if block_cols <= 2048 else 8 if block_cols <= 8192 else 16
    return block_rows, block_cols, num_warps


# Device-function calls are expensive in the interpreter (each one re-patches triton.language), so the
# helpers used inside key/query loops do their interpreter work inline rather than calling each other.


@triton.jit
def round_to(x, dtype: tl.constexpr):
    """x (fp32) rounded to `dtype`, nearest even, as the GPU's conversion does."""
    if _INTERPRET and dtype == tl.bfloat16:
        bits = x.to(tl.uint32, bitcast=True)
        bits = (bits + 0x7FFF + ((bits >> 16) & 1)) >> 16
        return bits.to(tl.uint16).to(tl.bfloat16, bitcast=True)
    return x.to(dtype)


@triton.jit
def dot_operand(x, dtype: tl.constexpr):
    """x (fp32) as the tensor cores read it: rounded to `dtype` (kept in fp32 under the interpreter)."""
    if _INTERPRET:
        if dtype == tl.bfloat16:
            bits = x.to(tl.uint32, bitcast=True)
            bits = ((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16) << 16
            return bits.to(tl.float32, bitcast=True)
        return x.to(dtype).to(tl.float32)
    return x.to(dtype)


@triton.jit
def upcast_in_interpreter(x):
    """Loaded values as they are on the GPU; fp32 under the interpreter, whose bf16 arithmetic is wrong."""
    if _INTERPRET:
        if x.dtype == tl.bfloat16:
            return (x.to(tl.uint16, bitcast=True).to(tl.uint32) << 16).to(tl.float32, bitcast=True)
        return x.to(tl.float32)
    return x


@triton.jit
def load_tile(ptrs, row_mask, offs_d, HEAD_DIM: tl.constexpr, BLOCK_D: tl.constexpr, MASK_ROWS: tl.constexpr):
    """A (rows, BLOCK_D) tile; rows outside `row_mask` (when MASK_ROWS) and channels >= HEAD_DIM read as 0."""
    if MASK_ROWS:
        mask = row_mask[:, None]
        if BLOCK_D != HEAD_DIM:
            mask = mask & (offs_d[None, :] < HEAD_DIM)
        x = tl.load(ptrs, mask=mask, other=0.0)
    elif BLOCK_D != HEAD_DIM:
        x = tl.load(ptrs, mask=offs_d[None, :] < HEAD_DIM, other=0.0)
    else:
        x = tl.load(ptrs)
    if _INTERPRET:  # as upcast_in_interpreter, inline
        if x.dtype == tl.bfloat16:
            x = (x.to(tl.uint16, bitcast=True).to(tl.uint32) << 16).to(tl.float32, bitcast=True)
        else:
            x = x.to(tl.float32)
    return x


@triton.jit
def rotate_pairs(x, cos, sin, INVERSE: tl.constexpr):
    """Rotate channel pairs (2i, 2i+1) of x (R, C) by angles cos/sin (R, C // 2), fp32.

    The rotation of `omni.ops.rope.apply_rope`; INVERSE applies its transpose, which maps gradients w.r.t.
    rotated values back to gradients w.r.t. the inputs.
    """
    R: tl.constexpr = x.shape[0]
    C: tl.constexpr = x.shape[1]
    even, odd = tl.split(tl.reshape(x, (R, C // 2, 2)))
    if INVERSE:
        sin = -sin
    return tl.reshape(tl.join(even * cos - odd * sin, even * sin + odd * cos), (R, C))
