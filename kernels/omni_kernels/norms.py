"""Fused norm kernels of the transformer block, forward and backward in Triton.

- `layer_norm_modulate`: LayerNorm without affine (fp32 statistics) then the adaLN shift/scale of the token's
  group, `LN(x) * (1 + scale) + shift`, in one pass (the model's `modulate(norm1(x.float()), shift, scale)`).
- `gated_residual`: `x + y * gate` with one gate per group of tokens, in fp32, stored in x's dtype.
- `rms_norm_rope`: RMSNorm across all heads (with weight) of a (B, L, H*D) projection, then RoPE on
  interleaved pairs, producing (B, L, H, D) queries or keys in one pass.

Groups: shift/scale/gate are (B, G, D) and token l of L belongs to group l // (L / G), as in the model's
`modulate` and `gated` (G = 1 per sample, G = frames per latent frame, G = L per token).

Backward kernels compute the input gradient row by row and reduce the parameter gradients (dshift, dscale,
dgate, dweight) over each group's rows inside one program per chunk of rows, writing fp32 partial sums
that a final `sum` folds; no atomics, so the gradients are deterministic.

Binding as for attention: `torch.library.custom_op` + `register_fake` -> `autograd.Function` -> the public
functions below.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl
from torch import Tensor

from omni_kernels._triton import (
    rotate_pairs,
    round_to,
    row_block,
    triton_device_ok,
    upcast_in_interpreter,
)

# --------------------------------------------------------------------------------------------------------------
# Kernels
# --------------------------------------------------------------------------------------------------------------


@triton.jit
def _load_rows(ptr, rows, cols, mask, width):
    """(rows, cols) fp32 tile of a row-major (n, width) tensor."""
    x = tl.load(ptr + rows.to(tl.int64)[:, None] * width + cols[None, :], mask=mask, other=0.0)
    return upcast_in_interpreter(x).to(tl.float32)


@triton.jit
def _layer_norm_modulate_fwd_kernel(
    X,
    Shift,
    Scale,
    Out,
    Mean,
    Rstd,
    n_rows,
    L,
    group_len,
    D,
    stride_sb,
    stride_sg,
    stride_cb,
    stride_cg,
    eps,
    BLOCK_ROWS: tl.constexpr,
    BLOCK_D: tl.constexpr,
):
    rows = tl.program_id(0) * BLOCK_ROWS + tl.arange(0, BLOCK_ROWS)
    cols = tl.arange(0, BLOCK_D)
    row_ok = rows < n_rows
    mask = row_ok[:, None] & (cols[None, :] < D)
    x = _load_rows(X, rows, cols, mask, D)
    mean = tl.sum(x, 1) / D
    centered = tl.where(mask, x - mean[:, None], 0.0)
    rstd = tl.rsqrt(tl.sum(centered * centered, 1) / D + eps)
    b = rows // L
    g = (rows % L) // group_len
    shift = tl.load(
        Shift + b[:, None] * stride_sb + g[:, None] * stride_sg + cols[None, :], mask=mask, other=0.0
    )
    scale = tl.load(
        Scale + b[:, None] * stride_cb + g[:, None] * stride_cg + cols[None, :], mask=mask, other=0.0
    )
    shift = upcast_in_interpreter(shift).to(tl.float32)
    scale = upcast_in_interpreter(scale).to(tl.float32)
    y = centered * rstd[:, None] * (1.0 + scale) + shift
    tl.store(
        Out + rows.to(tl.int64)[:, None] * D + cols[None, :], round_to(y, Out.dtype.element_ty), mask=mask
    )
    tl.store(Mean + rows, mean, mask=row_ok)
    tl.store(Rstd + rows, rstd, mask=row_ok)


@triton.jit
def _layer_norm_modulate_bwd_kernel(
    X,
    DOut,
    Scale,
    Mean,
    Rstd,
    DX,
    DShiftPart,
    DScalePart,
    L,
    G,
    group_len,
    rows_per_program,
    D,
    stride_cb,
    stride_cg,
    BLOCK_ROWS: tl.constexpr,
    BLOCK_D: tl.constexpr,
):
    """dx for a chunk of one group's rows, plus that chunk's partial sums of dshift and dscale."""
    pid_group = tl.program_id(0)  # b * G + g
    pid_chunk = tl.program_id(1)
    b = pid_group // G
    g = pid_group % G
    cols = tl.arange(0, BLOCK_D)
    col_ok = cols < D
    scale = tl.load(Scale + b * stride_cb + g * stride_cg + cols, mask=col_ok, other=0.0)
    scale = upcast_in_interpreter(scale).to(tl.float32)
    first = pid_chunk * rows_per_program
    last = tl.minimum(first + rows_per_program, group_len)
    base = b * L + g * group_len
    dshift = tl.zeros([BLOCK_D], dtype=tl.float32)
    dscale = tl.zeros([BLOCK_D], dtype=tl.float32)
    for start in range(first, last, BLOCK_ROWS):
        local = start + tl.arange(0, BLOCK_ROWS)
        row_ok = local < last
        rows = base + local
        mask = row_ok[:, None] & col_ok[None, :]
        x = _load_rows(X, rows, cols, mask, D)
        dy = _load_rows(DOut, rows, cols, mask, D)
        mean = tl.load(Mean + rows, mask=row_ok, other=0.0)
        rstd = tl.load(Rstd + rows, mask=row_ok, other=0.0)
        xhat = tl.where(mask, (x - mean[:, None]) * rstd[:, None], 0.0)
        dshift += tl.sum(dy, 0)
        dscale += tl.sum(dy * xhat, 0)
        dxhat = dy * (1.0 + scale[None, :])
        mean_dxhat_xhat = tl.sum(dxhat * xhat, 1) / D
        mean_dxhat = tl.sum(dxhat, 1) / D
        dx = (dxhat - xhat * mean_dxhat_xhat[:, None] - mean_dxhat[:, None]) * rstd[:, None]
        dx_ptrs = DX + rows.to(tl.int64)[:, None] * D + cols[None, :]
        tl.store(dx_ptrs, round_to(dx, DX.dtype.element_ty), mask=mask)
    part = (pid_group * tl.num_programs(1) + pid_chunk).to(tl.int64) * D + cols
    tl.store(DShiftPart + part, dshift, mask=col_ok)
    tl.store(DScalePart + part, dscale, mask=col_ok)


@triton.jit
def _gated_residual_fwd_kernel(
    X,
    Y,
    Gate,
    Out,
    n_rows,
    L,
    group_len,
    D,
    stride_gb,
    stride_gg,
    BLOCK_ROWS: tl.constexpr,
    BLOCK_D: tl.constexpr,
):
    rows = tl.program_id(0) * BLOCK_ROWS + tl.arange(0, BLOCK_ROWS)
    cols = tl.arange(0, BLOCK_D)
    mask = (rows < n_rows)[:, None] & (cols[None, :] < D)
    x = _load_rows(X, rows, cols, mask, D)
    y = _load_rows(Y, rows, cols, mask, D)
    b = rows // L
    g = (rows % L) // group_len
    gate = tl.load(
        Gate + b[:, None] * stride_gb + g[:, None] * stride_gg + cols[None, :], mask=mask, other=0.0
    )
    out = x + y * upcast_in_interpreter(gate).to(tl.float32)
    tl.store(
        Out + rows.to(tl.int64)[:, None] * D + cols[None, :], round_to(out, Out.dtype.element_ty), mask=mask
    )


@triton.jit
def _gated_residual_bwd_kernel(
    DOut,
    Y,
    Gate,
    DY,
    DGatePart,
    L,
    G,
    group_len,
    rows_per_program,
    D,
    stride_gb,
    stride_gg,
    BLOCK_ROWS: tl.constexpr,
    BLOCK_D: tl.constexpr,
):
    """dy = dout * gate for a chunk of one group's rows, plus the chunk's partial sum of dgate."""
    pid_group = tl.program_id(0)
    pid_chunk = tl.program_id(1)
    b = pid_group // G
    g = pid_group % G
    cols = tl.arange(0, BLOCK_D)
    col_ok = cols < D
    gate = tl.load(Gate + b * stride_gb + g * stride_gg + cols, mask=col_ok, other=0.0)
    gate = upcast_in_interpreter(gate).to(tl.float32)
    first = pid_chunk * rows_per_program
    last = tl.minimum(first + rows_per_program, group_len)
    base = b * L + g * group_len
    dgate = tl.zeros([BLOCK_D], dtype=tl.float32)
    for start in range(first, last, BLOCK_ROWS):
        local = start + tl.arange(0, BLOCK_ROWS)
        rows = base + local
        mask = (local < last)[:, None] & col_ok[None, :]
        dout = _load_rows(DOut, rows, cols, mask, D)
        y = _load_rows(Y, rows, cols, mask, D)
        dgate += tl.sum(dout * y, 0)
        dy_ptrs = DY + rows.to(tl.int64)[:, None] * D + cols[None, :]
        tl.store(dy_ptrs, round_to(dout * gate[None, :], DY.dtype.element_ty), mask=mask)
    part = (pid_group * tl.num_programs(1) + pid_chunk).to(tl.int64) * D + cols
    tl.store(DGatePart + part, dgate, mask=col_ok)


@triton.jit
def _load_head_angles(
    Cos, Sin, rows, row_ok, L, stride_cb, stride_cl, C, HEAD_DIM: tl.constexpr, BLOCK_C: tl.constexpr
):
    """(rows, BLOCK_C // 2) cos/sin for the channel pairs of all heads of each token row."""
    pairs = tl.arange(0, BLOCK_C // 2)
    offsets = (
        (rows // L)[:, None] * stride_cb
        + (rows % L)[:, None] * stride_cl
        + (pairs % (HEAD_DIM // 2))[None, :]
    )
    mask = row_ok[:, None] & (pairs[None, :] < C // 2)
    return tl.load(Cos + offsets, mask=mask, other=0.0), tl.load(Sin + offsets, mask=mask, other=0.0)


@triton.jit
def _rms_norm_rope_fwd_kernel(
    X,
    Weight,
    Cos,
    Sin,
    Out,
    Rstd,
    n_rows,
    L,
    C,
    stride_cb,
    stride_cl,
    eps,
    HEAD_DIM: tl.constexpr,
    ROPE: tl.constexpr,
    BLOCK_ROWS: tl.constexpr,
    BLOCK_C: tl.constexpr,
):
    rows = tl.program_id(0) * BLOCK_ROWS + tl.arange(0, BLOCK_ROWS)
    cols = tl.arange(0, BLOCK_C)
    row_ok = rows < n_rows
    col_ok = cols < C
    mask = row_ok[:, None] & col_ok[None, :]
    x = _load_rows(X, rows, cols, mask, C)
    rstd = tl.rsqrt(tl.sum(x * x, 1) / C + eps)
    weight = upcast_in_interpreter(tl.load(Weight + cols, mask=col_ok, other=0.0)).to(tl.float32)
    y = x * rstd[:, None] * weight[None, :]
    if ROPE:
        cos, sin = _load_head_angles(Cos, Sin, rows, row_ok, L, stride_cb, stride_cl, C, HEAD_DIM, BLOCK_C)
        y = rotate_pairs(y, cos, sin, False)
    tl.store(
        Out + rows.to(tl.int64)[:, None] * C + cols[None, :], round_to(y, Out.dtype.element_ty), mask=mask
    )
    tl.store(Rstd + rows, rstd, mask=row_ok)


@triton.jit
def _rms_norm_rope_bwd_kernel(
    X,
    Weight,
    Cos,
    Sin,
    DOut,
    Rstd,
    DX,
    DWeightPart,
    n_rows,
    L,
    C,
    rows_per_program,
    stride_cb,
    stride_cl,
    HEAD_DIM: tl.constexpr,
    ROPE: tl.constexpr,
    BLOCK_ROWS: tl.constexpr,
    BLOCK_C: tl.constexpr,
):
    """dx for a chunk of rows (the rotation undone first), plus the chunk's partial sum of dweight."""
    pid = tl.program_id(0)
    cols = tl.arange(0, BLOCK_C)
    col_ok = cols < C
    weight = upcast_in_interpreter(tl.load(Weight + cols, mask=col_ok, other=0.0)).to(tl.float32)
    first = pid * rows_per_program
    last = tl.minimum(first + rows_per_program, n_rows)
    dweight = tl.zeros([BLOCK_C], dtype=tl.float32)
    for start in range(first, last, BLOCK_ROWS):
        rows = start + tl.arange(0, BLOCK_ROWS)
        row_ok = rows < last
        mask = row_ok[:, None] & col_ok[None, :]
        x = _load_rows(X, rows, cols, mask, C)
        dy = _load_rows(DOut, rows, cols, mask, C)
        if ROPE:
            cos, sin = _load_head_angles(
                Cos, Sin, rows, row_ok, L, stride_cb, stride_cl, C, HEAD_DIM, BLOCK_C
            )
            dy = rotate_pairs(dy, cos, sin, True)
        rstd = tl.load(Rstd + rows, mask=row_ok, other=0.0)
        xhat = x * rstd[:, None]
        dweight += tl.sum(dy * xhat, 0)
        dxhat = dy * weight[None, :]
        mean_dxhat_xhat = tl.sum(dxhat * xhat, 1) / C
        dx = (dxhat - xhat * mean_dxhat_xhat[:, None]) * rstd[:, None]
        dx_ptrs = DX + rows.to(tl.int64)[:, None] * C + cols[None, :]
        tl.store(dx_ptrs, round_to(dx, DX.dtype.element_ty), mask=mask)
    tl.store(DWeightPart + pid.to(tl.int64) * C + cols, dweight, mask=col_ok)


# --------------------------------------------------------------------------------------------------------------
# Launchers
# --------------------------------------------------------------------------------------------------------------


def _row_chunks(device: torch.device, groups: int, group_len: int, block_rows: int) -> tuple[int, int]:
    """(rows per program, programs per group) for a backward that reduces over the rows of each group.

    Enough programs to fill the GPU a few times over; the fewer programs, the fewer partial sums to fold.
    """
    target = (
        4 * torch.cuda.get_device_properties(device).multi_processor_count if device.type == "cuda" else 8
    )
    per_group = max(1, min(triton.cdiv(group_len, block_rows), triton.cdiv(target, groups)))
    rows = triton.cdiv(triton.cdiv(group_len, per_group), block_rows) * block_rows
    return rows, triton.cdiv(group_len, rows)


def _layer_norm_modulate_fwd(
    x: Tensor, shift: Tensor, scale: Tensor, eps: float
) -> tuple[Tensor, Tensor, Tensor]:
    batch, length, dim = x.shape
    groups = shift.shape[1]
    n_rows = batch * length
    out = torch.empty_like(x)
    mean = torch.empty(n_rows, dtype=torch.float32, device=x.device)
    rstd = torch.empty_like(mean)
    block_rows, block_d, warps = row_block(dim)
    _layer_norm_modulate_fwd_kernel[(triton.cdiv(n_rows, block_rows),)](
        x, shift, scale, out, mean, rstd, n_rows, length, length // groups, dim,
        shift.stride(0), shift.stride(1), scale.stride(0), scale.stride(1), eps,
        BLOCK_ROWS=block_rows, BLOCK_D=block_d, num_warps=warps,
    )  # fmt: skip
    return out, mean, rstd


def _layer_norm_modulate_bwd(
    dout: Tensor, x: Tensor, scale: Tensor, mean: Tensor, rstd: Tensor
) -> tuple[Tensor, Tensor, Tensor]:
    batch, length, dim = x.shape
    groups = scale.shape[1]
    group_len = length // groups
    dout = dout.contiguous()
    block_rows, block_d, warps = row_block(dim)
    rows_per_program, chunks = _row_chunks(x.device, batch * groups, group_len, block_rows)
    dx = torch.empty_like(x)
    parts = torch.empty((2, batch * groups, chunks, dim), dtype=torch.float32, device=x.device)
    _layer_norm_modulate_bwd_kernel[(batch * groups, chunks)](
        x, dout, scale, mean, rstd, dx, parts[0], parts[1], length, groups, group_len, rows_per_program, dim,
        scale.stride(0), scale.stride(1), BLOCK_ROWS=block_rows, BLOCK_D=block_d, num_warps=warps,
    )  # fmt: skip
    dshift, dscale = (part.sum(dim=1).view(batch, groups, dim).to(scale.dtype) for part in parts)
    return dx, dshift, dscale


def _gated_residual_fwd(x: Tensor, y: Tensor, gate: Tensor) -> Tensor:
    batch, length, dim = x.shape
    n_rows = batch * length
    out = torch.empty_like(x)
    block_rows, block_d, warps = row_block(dim)
    _gated_residual_fwd_kernel[(triton.cdiv(n_rows, block_rows),)](
        x, y, gate, out, n_rows, length, length // gate.shape[1], dim, gate.stride(0), gate.stride(1),
        BLOCK_ROWS=block_rows, BLOCK_D=block_d, num_warps=warps,
    )  # fmt: skip
    return out


def _gated_residual_bwd(dout: Tensor, y: Tensor, gate: Tensor) -> tuple[Tensor, Tensor]:
    batch, length, dim = y.shape
    groups = gate.shape[1]
    group_len = length // groups
    dout = dout.contiguous()
    block_rows, block_d, warps = row_block(dim)
    rows_per_program, chunks = _row_chunks(y.device, batch * groups, group_len, block_rows)
    dy = torch.empty_like(y)
    parts = torch.empty((batch * groups, chunks, dim), dtype=torch.float32, device=y.device)
    _gated_residual_bwd_kernel[(batch * groups, chunks)](
        dout, y, gate, dy, parts, length, groups, group_len, rows_per_program, dim,
        gate.stride(0), gate.stride(1), BLOCK_ROWS=block_rows, BLOCK_D=block_d, num_warps=warps,
    )  # fmt: skip
    return dy, parts.sum(dim=1).view(batch, groups, dim).to(gate.dtype)


def _angles(cos: Tensor | None) -> tuple[int, int]:
    if cos is None:
        return 0, 0
    return (0 if cos.shape[0] == 1 else cos.stride(0)), cos.stride(1)


def _rms_norm_rope_fwd(
    x: Tensor, weight: Tensor, cos: Tensor | None, sin: Tensor | None, heads: int, eps: float
) -> tuple[Tensor, Tensor]:
    batch, length, channels = x.shape
    n_rows = batch * length
    out = torch.empty((batch, length, heads, channels // heads), dtype=x.dtype, device=x.device)
    rstd = torch.empty(n_rows, dtype=torch.float32, device=x.device)
    block_rows, block_c, warps = row_block(channels)
    _rms_norm_rope_fwd_kernel[(triton.cdiv(n_rows, block_rows),)](
        x, weight, cos, sin, out, rstd, n_rows, length, channels, *_angles(cos), eps,
        HEAD_DIM=channels // heads, ROPE=cos is not None, BLOCK_ROWS=block_rows, BLOCK_C=block_c, num_warps=warps,
    )  # fmt: skip
    return out, rstd


def _rms_norm_rope_bwd(
    dout: Tensor, x: Tensor, weight: Tensor, cos: Tensor | None, sin: Tensor | None, rstd: Tensor
) -> tuple[Tensor, Tensor]:
    batch, length, channels = x.shape
    n_rows = batch * length
    dout = dout.contiguous()
    block_rows, block_c, warps = row_block(channels)
    rows_per_program, chunks = _row_chunks(x.device, 1, n_rows, block_rows)
    dx = torch.empty_like(x)
    parts = torch.empty((chunks, channels), dtype=torch.float32, device=x.device)
    _rms_norm_rope_bwd_kernel[(chunks,)](
        x, weight, cos, sin, dout, rstd, dx, parts, n_rows, length, channels, rows_per_program, *_angles(cos),
        HEAD_DIM=dout.shape[-1], ROPE=cos is not None, BLOCK_ROWS=block_rows, BLOCK_C=block_c, num_warps=warps,
    )  # fmt: skip
    return dx, parts.sum(dim=0).to(weight.dtype)


# --------------------------------------------------------------------------------------------------------------
# Binding: custom ops (+ fake tensors for torch.compile) -> autograd.Function -> public functions
# --------------------------------------------------------------------------------------------------------------


@torch.library.custom_op("omni_kernels::layer_norm_modulate_forward", mutates_args=())
def layer_norm_modulate_forward(
    x: Tensor, shift: Tensor, scale: Tensor, eps: float
) -> tuple[Tensor, Tensor, Tensor]:
    """(out (B, L, D) in x's dtype, mean (B*L,) fp32, rstd (B*L,) fp32)."""
    return _layer_norm_modulate_fwd(x, shift, scale, eps)


@layer_norm_modulate_forward.register_fake
def _(x, shift, scale, eps):
    rows = x.shape[0] * x.shape[1]
    return torch.empty_like(x), x.new_empty(rows, dtype=torch.float32), x.new_empty(rows, dtype=torch.float32)


@torch.library.custom_op("omni_kernels::layer_norm_modulate_backward", mutates_args=())
def layer_norm_modulate_backward(
    dout: Tensor, x: Tensor, scale: Tensor, mean: Tensor, rstd: Tensor
) -> tuple[Tensor, Tensor, Tensor]:
    """(dx, dshift, dscale)."""
    return _layer_norm_modulate_bwd(dout, x, scale, mean, rstd)


@layer_norm_modulate_backward.register_fake
def _(dout, x, scale, mean, rstd):
    return (
        torch.empty_like(x),
        torch.empty(scale.shape, dtype=scale.dtype, device=scale.device),
        torch.empty(scale.shape, dtype=scale.dtype, device=scale.device),
    )


@torch.library.custom_op("omni_kernels::gated_residual_forward", mutates_args=())
def gated_residual_forward(x: Tensor, y: Tensor, gate: Tensor) -> Tensor:
    """x + y * gate (B, L, D) in x's dtype."""
    return _gated_residual_fwd(x, y, gate)


@gated_residual_forward.register_fake
def _(x, y, gate):
    return torch.empty_like(x)


@torch.library.custom_op("omni_kernels::gated_residual_backward", mutates_args=())
def gated_residual_backward(dout: Tensor, y: Tensor, gate: Tensor) -> tuple[Tensor, Tensor]:
    """(dy, dgate); dx is dout itself."""
    return _gated_residual_bwd(dout, y, gate)


@gated_residual_backward.register_fake
def _(dout, y, gate):
    return torch.empty_like(y), torch.empty(gate.shape, dtype=gate.dtype, device=gate.device)


@torch.library.custom_op("omni_kernels::rms_norm_rope_forward", mutates_args=())
def rms_norm_rope_forward(
    x: Tensor, weight: Tensor, cos: Tensor | None, sin: Tensor | None, heads: int, eps: float
) -> tuple[Tensor, Tensor]:
    """(out (B, L, H, D) in x's dtype, rstd (B*L,) fp32)."""
    return _rms_norm_rope_fwd(x, weight, cos, sin, heads, eps)


@rms_norm_rope_forward.register_fake
def _(x, weight, cos, sin, heads, eps):
    batch, length, channels = x.shape
    out = x.new_empty((batch, length, heads, channels // heads))
    return out, x.new_empty(batch * length, dtype=torch.float32)


@torch.library.custom_op("omni_kernels::rms_norm_rope_backward", mutates_args=())
def rms_norm_rope_backward(
    dout: Tensor, x: Tensor, weight: Tensor, cos: Tensor | None, sin: Tensor | None, rstd: Tensor
) -> tuple[Tensor, Tensor]:
    """(dx (B, L, H*D), dweight (H*D,))."""
    return _rms_norm_rope_bwd(dout, x, weight, cos, sin, rstd)


@rms_norm_rope_backward.register_fake
def _(dout, x, weight, cos, sin, rstd):
    return torch.empty_like(x), torch.empty_like(weight)


class LayerNormModulateFunc(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, shift, scale, eps):
        out, mean, rstd = torch.ops.omni_kernels.layer_norm_modulate_forward(x, shift, scale, eps)
        ctx.save_for_backward(x, scale, mean, rstd)
        return out

    @staticmethod
    def backward(ctx, dout):
        x, scale, mean, rstd = ctx.saved_tensors
        dx, dshift, dscale = torch.ops.omni_kernels.layer_norm_modulate_backward(dout, x, scale, mean, rstd)
        return dx, dshift, dscale, None


class GatedResidualFunc(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, y, gate):
        ctx.save_for_backward(y, gate)
        return torch.ops.omni_kernels.gated_residual_forward(x, y, gate)

    @staticmethod
    def backward(ctx, dout):
        y, gate = ctx.saved_tensors
        dy, dgate = torch.ops.omni_kernels.gated_residual_backward(dout, y, gate)
        return dout, dy, dgate


class RMSNormRoPEFunc(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, cos, sin, heads, eps):
        out, rstd = torch.ops.omni_kernels.rms_norm_rope_forward(x, weight, cos, sin, heads, eps)
        ctx.save_for_backward(x, weight, cos, sin, rstd)
        return out

    @staticmethod
    def backward(ctx, dout):
        x, weight, cos, sin, rstd = ctx.saved_tensors
        dx, dweight = torch.ops.omni_kernels.rms_norm_rope_backward(dout, x, weight, cos, sin, rstd)
        return dx, dweight, None, None, None, None


def _check_rows(name: str, x: Tensor) -> None:
    if x.ndim != 3:
        raise ValueError(f"{name} wants x (B, L, D), got shape {tuple(x.shape)}")
    if not triton_device_ok(x.device):
        raise ValueError(
            f"{name} runs on CUDA tensors (or CPU tensors with TRITON_INTERPRET=1), got {x.device}"
        )


def _check_groups(name: str, x: Tensor, param_name: str, param: Tensor) -> None:
    batch, length, dim = x.shape
    if param.ndim != 3 or param.shape[0] != batch or param.shape[2] != dim or length % param.shape[1]:
        raise ValueError(
            f"{name}: {param_name} must be (B, G, D) = ({batch}, G, {dim}) with G dividing L={length}, "
            f"got {tuple(param.shape)}"
        )
    if param.stride(-1) != 1:
        raise ValueError(f"{name}: {param_name} must have unit stride over D, got strides {param.stride()}")


def layer_norm_modulate(x: Tensor, shift: Tensor, scale: Tensor, eps: float = 1e-6) -> Tensor:
    """LayerNorm without affine (fp32 statistics), then `* (1 + scale) + shift` per group of tokens.

    Args:
        x: (B, L, D) tokens, any float dtype.
        shift, scale: (B, G, D) modulation, G dividing L: token l uses row l // (L / G).
        eps: LayerNorm epsilon.

    Returns:
        (B, L, D) in x's dtype; equals `modulate(F.layer_norm(x.float(), (D,), eps=eps), shift, scale).type_as(x)`.
    """
    _check_rows("layer_norm_modulate", x)
    _check_groups("layer_norm_modulate", x, "shift", shift)
    _check_groups("layer_norm_modulate", x, "scale", scale)
    if shift.shape != scale.shape or shift.dtype != scale.dtype:
        raise ValueError(
            f"layer_norm_modulate: shift {shift.dtype} {tuple(shift.shape)} and scale {scale.dtype} "
            f"{tuple(scale.shape)} must match"
        )
    return LayerNormModulateFunc.apply(x.contiguous(), shift, scale, eps)


def gated_residual(x: Tensor, y: Tensor, gate: Tensor) -> Tensor:
    """x + y * gate in fp32, one gate per group of tokens, returned in x's dtype.

    Args:
        x: (B, L, D) residual stream.
        y: (B, L, D) branch output.
        gate: (B, G, D), G dividing L: token l uses row l // (L / G).

    Returns:
        (B, L, D) in x's dtype; equals `(x.float() + gated(y.float(), gate)).type_as(x)`.
    """
    _check_rows("gated_residual", x)
    if y.shape != x.shape:
        raise ValueError(f"gated_residual: y shape {tuple(y.shape)} must equal x shape {tuple(x.shape)}")
    _check_groups("gated_residual", x, "gate", gate)
    return GatedResidualFunc.apply(x.contiguous(), y.contiguous(), gate)


def rms_norm_rope(
    x: Tensor, weight: Tensor, rope: tuple[Tensor, Tensor] | None = None, *, heads: int, eps: float = 1e-6
) -> Tensor:
    """RMSNorm across all heads (with weight), then optionally RoPE, split into heads, in one pass.

    Args:
        x: (B, L, H*D) query or key projection, any float dtype.
        weight: (H*D,) RMSNorm weight.
        rope: optional (cos, sin), each (1 or B, L, 1, D/2) float32, applied on interleaved channel pairs of
            every head as `omni.ops.rope.apply_rope` does.
        heads: H.
        eps: RMSNorm epsilon.

    Returns:
        (B, L, H, D) in x's dtype; equals `apply_rope(nn.RMSNorm(x).unflatten(-1, (H, D)), cos, sin)`
        computed in fp32 and rounded once.
    """
    _check_rows("rms_norm_rope", x)
    batch, length, channels = x.shape
    if heads <= 0 or channels % heads:
        raise ValueError(f"rms_norm_rope: heads={heads} must divide the channel count {channels}")
    if weight.shape != (channels,):
        raise ValueError(f"rms_norm_rope: weight must be ({channels},), got {tuple(weight.shape)}")
    cos = sin = None
    if rope is not None:
        cos, sin = (r.float().contiguous() for r in rope)
        head_dim = channels // heads
        if head_dim % 2 or cos.shape != sin.shape or cos.shape[0] not in (1, batch):
            raise ValueError("rms_norm_rope: rope needs an even head dim and (1 or B, L, 1, D/2) cos/sin")
        if cos.shape[1:] != (length, 1, head_dim // 2):
            raise ValueError(
                f"rms_norm_rope: cos/sin must be (1 or {batch}, {length}, 1, {head_dim // 2}), got {tuple(cos.shape)}"
            )
    return RMSNormRoPEFunc.apply(x.contiguous(), weight, cos, sin, heads, eps)
