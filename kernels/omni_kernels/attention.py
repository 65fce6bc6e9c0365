"""Flash attention forward and backward in Triton, with key-padding masks, per-sample lengths and fused RoPE.

Layout is that of omni's attention dispatch: q (B, Lq, H, D), k/v (B, Lk, H, D), read through their strides
(unit stride over D). Non-causal, softmax scale 1/sqrt(D) by default. Head dims that are not a power of two
are padded to the next one inside the kernels (masked loads), so any D up to 256 works.

- Forward: online softmax in fp32 over key blocks; the base-2 logsumexp (B, H, Lq) is saved for the backward.
- Masks and lengths: keys past a sample's length are never loaded, a key block whose key-padding mask is all
  False is skipped, and query blocks past a sample's length do no work, so a batch of joint sequences of
  different lengths costs what its real tokens cost. Rows with no key to attend to return 0 (as sdpa does).
- Backward: delta = rowsum(dO * O), then two kernels: dK/dV (a program per key block, looping over query
  blocks) and dQ (a program per query block, looping over key blocks). No atomics, so gradients are
  bitwise deterministic, which exact training resumption relies on; the price is recomputing QK^T and
  dO V^T in the dQ kernel (7 block matmuls instead of 5).
- RoPE (Wan's interleaved pairs): queries are rotated in the forward kernel as each Q tile is loaded; keys
  are rotated once by `_rope_kernel`, since rotating K tiles inside the key loop would redo it for every
  query block. The backward reads the rotated q and k and rotates dQ and dK back in its epilogues, so
  gradients are those of the un-rotated inputs.

Binding, as flash-attention binds its kernels: `torch.library.custom_op` ops `omni_kernels::flash_attn_forward`
and `omni_kernels::flash_attn_backward` (with fake implementations for torch.compile) -> `FlashAttentionFunc`
(autograd) -> `flash_attention`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import triton
import triton.language as tl
from torch import Tensor

from omni_kernels._triton import (
    INTERPRET,
    dot_operand,
    dot_precision,
    load_tile,
    rotate_pairs,
    round_to,
    triton_device_ok,
)

MAX_HEAD_DIM = 256
LOG2E = 1.4426950408889634
# The key block of the masked kernels (forward, dQ), which walk a per-sample list of blocks of this size.
MASK_BLOCK_N = 64
_MASK_BLOCK_N = tl.constexpr(MASK_BLOCK_N)

# --------------------------------------------------------------------------------------------------------------
# Autotune configs for Hopper (H100/H200), checked by compiling for sm_90a: no config here spills registers at
# d=128 except the 4-warp ones kept for narrower heads. The forward likes 128-row query tiles with 8 warps; the
# backward kernels the asymmetric tiles of Triton's fused-attention tutorial (32x128 for dK/dV, 128x32 for dQ),
# with 8 warps at d=128 because dK and dV both accumulate in registers. Under the interpreter there is nothing
# to tune: one small config each, so short test sequences span several blocks.
# --------------------------------------------------------------------------------------------------------------


def _config(block_m: int, block_n: int, warps: int, stages: int) -> triton.Config:
    return triton.Config({"BLOCK_M": block_m, "BLOCK_N": block_n}, num_warps=warps, num_stages=stages)


_FWD_CONFIGS = [
    _config(128, 128, 8, 2),
    _config(128, 128, 8, 3),
    _config(128, 64, 8, 2),
    _config(128, 64, 8, 3),
    _config(128, 64, 4, 3),
    _config(64, 128, 4, 3),
    _config(64, 64, 4, 3),
    _config(64, 64, 4, 4),
    _config(64, 32, 4, 2),
    _config(32, 64, 8, 2),  # fp32
]
_DKDV_CONFIGS = [
    _config(32, 128, 8, 3),
    _config(32, 128, 8, 4),
    _config(32, 128, 4, 3),
    _config(64, 128, 8, 2),
    _config(64, 128, 8, 3),
    _config(64, 64, 8, 3),
    _config(32, 64, 4, 3),
    _config(16, 64, 4, 2),
    _config(16, 64, 8, 2),  # fp32
    _config(16, 32, 8, 2),  # fp32
]
_DQ_CONFIGS = [
    _config(128, 32, 8, 3),
    _config(128, 32, 4, 3),
    _config(128, 64, 8, 2),
    _config(128, 64, 8, 3),
    _config(64, 64, 4, 3),
    _config(64, 32, 4, 3),
    _config(64, 16, 4, 2),
    _config(32, 64, 8, 2),  # fp32
]
_INTERPRETER_CONFIGS = {
    "fwd": [_config(32, MASK_BLOCK_N, 4, 1)],
    "dkdv": [_config(64, 32, 4, 1)],
    "dq": [_config(128, MASK_BLOCK_N, 4, 1)],
}


def _prune(configs: list[triton.Config], named_args: dict, **kwargs) -> list[triton.Config]:
    """Drop configs that cannot fit (wide heads, fp32 tiles), leave most of a tile empty (short sequences) or,
    in the masked forward and dQ kernels, use another key block than the live-block list's."""
    block_d = kwargs["BLOCK_D"]
    fp32 = named_args["Q"].dtype == torch.float32
    seq = max(named_args["Lq"], named_args["Lk"])
    walks_live_blocks = kwargs["HAS_MASK"] and "LiveBlocks" in named_args
    kept = []
    for config in configs:
        block_m, block_n = config.kwargs["BLOCK_M"], config.kwargs["BLOCK_N"]
        if block_d > 128 and (block_m * block_n > 64 * 64 or config.num_stages > 3):
            continue
        # Exact fp32 matmuls run on the CUDA cores and hold their tiles in registers: small tiles, 8 warps.
        if fp32 and (block_m * block_n > 32 * 64 or config.num_warps != 8 or config.num_stages > 2):
            continue
        if block_m > max(seq, 64) or block_n > max(seq, 64):
            continue
        if walks_live_blocks and block_n != MASK_BLOCK_N:
            continue
        kept.append(config)
    assert kept, "every config list keeps a 64 x 64 config and an fp32 one"
    return kept


def _autotune(name: str, configs: list[triton.Config]):
    if INTERPRET:
        return triton.autotune(configs=_INTERPRETER_CONFIGS[name], key=[])
    return triton.autotune(
        configs=configs,
        key=["BLOCK_D", "seq_bucket", "HAS_MASK", "VARLEN", "ROPE"],
        prune_configs_by={"early_config_prune": _prune},
    )


# --------------------------------------------------------------------------------------------------------------
# Kernels
# --------------------------------------------------------------------------------------------------------------


@triton.jit
def _load_angles(Cos, Sin, base, rows, row_mask, stride_cl, HEAD_DIM: tl.constexpr, BLOCK_D: tl.constexpr):
    """(rows, BLOCK_D // 2) fp32 cos/sin of the given token rows; padded pairs read as 0."""
    offs_p = tl.arange(0, BLOCK_D // 2)
    offsets = base + rows[:, None] * stride_cl + offs_p[None, :]
    mask = row_mask[:, None] & (offs_p[None, :] < HEAD_DIM // 2)
    return tl.load(Cos + offsets, mask=mask, other=0.0), tl.load(Sin + offsets, mask=mask, other=0.0)


@triton.jit
def _rope_kernel(
    X,
    Out,
    Cos,
    Sin,
    stride_xb,
    stride_xl,
    stride_xh,
    stride_ob,
    stride_ol,
    stride_oh,
    stride_cb,
    stride_cl,
    H,
    L,
    HEAD_DIM: tl.constexpr,
    BLOCK_D: tl.constexpr,
    BLOCK_L: tl.constexpr,
):
    """Out = x rotated by (cos, sin), for the keys of a RoPE attention (rotated once, not per query block)."""
    pid_l = tl.program_id(0)
    pid_bh = tl.program_id(1)
    b = (pid_bh // H).to(tl.int64)
    h = (pid_bh % H).to(tl.int64)
    rows = pid_l * BLOCK_L + tl.arange(0, BLOCK_L)
    offs_d = tl.arange(0, BLOCK_D)
    row_ok = rows < L
    x_ptrs = X + b * stride_xb + h * stride_xh + rows[:, None] * stride_xl + offs_d[None, :]
    x = load_tile(x_ptrs, row_ok, offs_d, HEAD_DIM, BLOCK_D, True).to(tl.float32)
    cos, sin = _load_angles(Cos, Sin, b * stride_cb, rows, row_ok, stride_cl, HEAD_DIM, BLOCK_D)
    x = rotate_pairs(x, cos, sin, False)
    out_ptrs = Out + b * stride_ob + h * stride_oh + rows[:, None] * stride_ol + offs_d[None, :]
    store_mask = row_ok[:, None] & (offs_d[None, :] < HEAD_DIM)
    tl.store(out_ptrs, round_to(x, Out.dtype.element_ty), mask=store_mask)


@triton.jit
def _fwd_block(
    acc,
    l_i,
    m_i,
    q,
    K,
    V,
    Mask,
    start_n,
    k_len,
    stride_kl,
    stride_vl,
    qk_scale,
    HEAD_DIM: tl.constexpr,
    BLOCK_D: tl.constexpr,
    BLOCK_N: tl.constexpr,
    MASK_KEYS: tl.constexpr,
    HAS_MASK: tl.constexpr,
    DOT_PRECISION: tl.constexpr,
):
    """One key block of the online softmax: acc, l_i, m_i updated with keys [start_n, start_n + BLOCK_N)."""
    offs_n = start_n + tl.arange(0, BLOCK_N)
    offs_d = tl.arange(0, BLOCK_D)
    valid = offs_n < k_len
    if HAS_MASK:
        valid = valid & (tl.load(Mask + offs_n, mask=valid, other=0) != 0)
    k = load_tile(
        K + offs_n[:, None] * stride_kl + offs_d[None, :], valid, offs_d, HEAD_DIM, BLOCK_D, MASK_KEYS
    )
    s = tl.dot(q, tl.trans(k), input_precision=DOT_PRECISION) * qk_scale  # (BLOCK_M, BLOCK_N), log2 units
    if MASK_KEYS:
        s = tl.where(valid[None, :], s, float("-inf"))
    # Every block that reaches here has a valid key, so m_new is finite and alpha is never inf - inf.
    m_new = tl.maximum(m_i, tl.max(s, 1))
    p = tl.math.exp2(s - m_new[:, None])
    alpha = tl.math.exp2(m_i - m_new)
    l_i = l_i * alpha + tl.sum(p, 1)
    v = load_tile(
        V + offs_n[:, None] * stride_vl + offs_d[None, :], valid, offs_d, HEAD_DIM, BLOCK_D, MASK_KEYS
    )
    acc = acc * alpha[:, None]
    acc = tl.dot(dot_operand(p, V.dtype.element_ty), v, acc, input_precision=DOT_PRECISION)
    return acc, l_i, m_new


@triton.jit
def _attn_fwd_kernel(
    Q,
    K,
    V,
    Out,
    Lse,
    QRot,
    Mask,
    LiveBlocks,
    LiveCounts,
    SeqlensQ,
    SeqlensK,
    Cos,
    Sin,
    qk_scale,
    stride_qb,
    stride_ql,
    stride_qh,
    stride_kb,
    stride_kl,
    stride_kh,
    stride_vb,
    stride_vl,
    stride_vh,
    stride_ob,
    stride_ol,
    stride_oh,
    stride_mb,
    stride_lb,
    stride_cb,
    stride_cl,
    H,
    Lq,
    Lk,
    seq_bucket,
    HEAD_DIM: tl.constexpr,
    BLOCK_D: tl.constexpr,
    HAS_MASK: tl.constexpr,
    VARLEN: tl.constexpr,
    ROPE: tl.constexpr,
    STORE_QROT: tl.constexpr,
    DOT_PRECISION: tl.constexpr,
    BLOCK_M: tl.constexpr,
    BLOCK_N: tl.constexpr,
):
    pid_m = tl.program_id(0)
    pid_bh = tl.program_id(1)
    b = (pid_bh // H).to(tl.int64)
    h = (pid_bh % H).to(tl.int64)
    if VARLEN:
        q_len = tl.minimum(tl.load(SeqlensQ + b), Lq)
        k_len = tl.minimum(tl.load(SeqlensK + b), Lk)
    else:
        q_len = Lq
        k_len = Lk
    start_m = pid_m * BLOCK_M
    offs_m = start_m + tl.arange(0, BLOCK_M)
    offs_d = tl.arange(0, BLOCK_D)
    row_in = offs_m < Lq

    q_ptrs = Q + b * stride_qb + h * stride_qh + offs_m[:, None] * stride_ql + offs_d[None, :]
    q = load_tile(q_ptrs, row_in, offs_d, HEAD_DIM, BLOCK_D, True)
    if ROPE:
        cos, sin = _load_angles(Cos, Sin, b * stride_cb, offs_m, row_in, stride_cl, HEAD_DIM, BLOCK_D)
        q = rotate_pairs(q.to(tl.float32), cos, sin, False)
        q = dot_operand(q, Q.dtype.element_ty)
        if STORE_QROT:
            qrot_ptrs = QRot + b * stride_ob + h * stride_oh + offs_m[:, None] * stride_ol + offs_d[None, :]
            qrot_mask = row_in[:, None] & (offs_d[None, :] < HEAD_DIM)
            tl.store(qrot_ptrs, round_to(q.to(tl.float32), QRot.dtype.element_ty), mask=qrot_mask)

    acc = tl.zeros([BLOCK_M, BLOCK_D], dtype=tl.float32)
    l_i = tl.zeros([BLOCK_M], dtype=tl.float32)
    m_i = tl.full([BLOCK_M], float("-inf"), dtype=tl.float32)
    k_hi = tl.where(start_m < q_len, k_len, 0)  # query blocks past the sample's length do no work
    K += b * stride_kb + h * stride_kh
    V += b * stride_vb + h * stride_vh
    if HAS_MASK:
        tl.static_assert(BLOCK_N == _MASK_BLOCK_N, "the masked path walks blocks of MASK_BLOCK_N keys")
        # Only the key blocks the mask leaves something in, from a per-sample list (see `_live_blocks`): a
        # plain loop over them, which Triton software-pipelines, unlike a loop that branches per block.
        Mask += b * stride_mb
        n_live = tl.where(start_m < q_len, tl.load(LiveCounts + b), 0)
        for i in range(0, n_live):
            start_n = tl.load(LiveBlocks + b * stride_lb + i) * BLOCK_N
            acc, l_i, m_i = _fwd_block(
                acc, l_i, m_i, q, K, V, Mask, start_n, k_hi, stride_kl, stride_vl, qk_scale,
                HEAD_DIM, BLOCK_D, BLOCK_N, True, True, DOT_PRECISION,
            )  # fmt: skip
    else:
        k_full = k_hi // BLOCK_N * BLOCK_N
        for start_n in range(0, k_full, BLOCK_N):
            acc, l_i, m_i = _fwd_block(
                acc, l_i, m_i, q, K, V, Mask, start_n, k_hi, stride_kl, stride_vl, qk_scale,
                HEAD_DIM, BLOCK_D, BLOCK_N, False, False, DOT_PRECISION,
            )  # fmt: skip
        for start_n in range(k_full, k_hi, BLOCK_N):  # the partial last block, if any
            acc, l_i, m_i = _fwd_block(
                acc, l_i, m_i, q, K, V, Mask, start_n, k_hi, stride_kl, stride_vl, qk_scale,
                HEAD_DIM, BLOCK_D, BLOCK_N, True, False, DOT_PRECISION,
            )  # fmt: skip

    # Rows past the sample's length and rows without any key give 0 and a +inf logsumexp, which makes
    # their probabilities exactly 0 in the backward.
    row_ok = (offs_m < q_len) & (l_i > 0.0)
    l_safe = tl.where(row_ok, l_i, 1.0)
    out = tl.where(row_ok[:, None], acc / l_safe[:, None], 0.0)
    lse = tl.where(row_ok, m_i + tl.math.log2(l_safe), float("inf"))
    out_ptrs = Out + b * stride_ob + h * stride_oh + offs_m[:, None] * stride_ol + offs_d[None, :]
    tl.store(
        out_ptrs, round_to(out, Out.dtype.element_ty), mask=row_in[:, None] & (offs_d[None, :] < HEAD_DIM)
    )
    tl.store(Lse + pid_bh.to(tl.int64) * Lq + offs_m, lse, mask=row_in)


_attn_fwd = _autotune("fwd", _FWD_CONFIGS)(_attn_fwd_kernel)


@triton.jit
def _bwd_preprocess_kernel(
    Out,
    DOut,
    Delta,
    stride_ob,
    stride_ol,
    stride_oh,
    stride_db,
    stride_dl,
    stride_dh,
    H,
    Lq,
    HEAD_DIM: tl.constexpr,
    BLOCK_D: tl.constexpr,
    BLOCK_M: tl.constexpr,
):
    """delta = rowsum(dO * O), (B, H, Lq) fp32."""
    pid_m = tl.program_id(0)
    pid_bh = tl.program_id(1)
    b = (pid_bh // H).to(tl.int64)
    h = (pid_bh % H).to(tl.int64)
    offs_m = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    offs_d = tl.arange(0, BLOCK_D)
    row_in = offs_m < Lq
    o = load_tile(
        Out + b * stride_ob + h * stride_oh + offs_m[:, None] * stride_ol + offs_d[None, :],
        row_in, offs_d, HEAD_DIM, BLOCK_D, True,
    )  # fmt: skip
    do = load_tile(
        DOut + b * stride_db + h * stride_dh + offs_m[:, None] * stride_dl + offs_d[None, :],
        row_in, offs_d, HEAD_DIM, BLOCK_D, True,
    )  # fmt: skip
    delta = tl.sum(o.to(tl.float32) * do.to(tl.float32), 1)
    tl.store(Delta + pid_bh.to(tl.int64) * Lq + offs_m, delta, mask=row_in)


@triton.jit
def _dkdv_block(
    dk,
    dv,
    k,
    v,
    key_valid,
    Q,
    DOut,
    Lse,
    Delta,
    start_m,
    q_hi,
    stride_ql,
    stride_dl,
    qk_scale,
    HEAD_DIM: tl.constexpr,
    BLOCK_D: tl.constexpr,
    BLOCK_M: tl.constexpr,
    MASK_ROWS: tl.constexpr,
    MASK_KEYS: tl.constexpr,
    DOT_PRECISION: tl.constexpr,
):
    """dK, dV of one key block accumulated over queries [start_m, start_m + BLOCK_M); works transposed."""
    offs_m = start_m + tl.arange(0, BLOCK_M)
    offs_d = tl.arange(0, BLOCK_D)
    row_ok = offs_m < q_hi
    q = load_tile(
        Q + offs_m[:, None] * stride_ql + offs_d[None, :], row_ok, offs_d, HEAD_DIM, BLOCK_D, MASK_ROWS
    )
    do = load_tile(
        DOut + offs_m[:, None] * stride_dl + offs_d[None, :], row_ok, offs_d, HEAD_DIM, BLOCK_D, MASK_ROWS
    )
    if MASK_ROWS:
        lse = tl.load(Lse + offs_m, mask=row_ok, other=float("inf"))
        delta = tl.load(Delta + offs_m, mask=row_ok, other=0.0)
    else:
        lse = tl.load(Lse + offs_m)
        delta = tl.load(Delta + offs_m)
    s_t = tl.dot(k, tl.trans(q), input_precision=DOT_PRECISION) * qk_scale  # (BLOCK_N, BLOCK_M)
    p_t = tl.math.exp2(s_t - lse[None, :])
    if MASK_KEYS:
        p_t = tl.where(key_valid[:, None], p_t, 0.0)
    dv = tl.dot(dot_operand(p_t, DOut.dtype.element_ty), do, dv, input_precision=DOT_PRECISION)
    dp_t = tl.dot(v, tl.trans(do), input_precision=DOT_PRECISION)
    ds_t = p_t * (dp_t - delta[None, :])
    dk = tl.dot(dot_operand(ds_t, Q.dtype.element_ty), q, dk, input_precision=DOT_PRECISION)
    return dk, dv


@triton.jit
def _attn_bwd_dkdv_kernel(
    Q,
    K,
    V,
    DOut,
    Lse,
    Delta,
    DK,
    DV,
    Mask,
    SeqlensQ,
    SeqlensK,
    Cos,
    Sin,
    sm_scale,
    qk_scale,
    stride_qb,
    stride_ql,
    stride_qh,
    stride_kb,
    stride_kl,
    stride_kh,
    stride_vb,
    stride_vl,
    stride_vh,
    stride_db,
    stride_dl,
    stride_dh,
    stride_gb,
    stride_gl,
    stride_gh,
    stride_mb,
    stride_cb,
    stride_cl,
    H,
    Lq,
    Lk,
    seq_bucket,
    HEAD_DIM: tl.constexpr,
    BLOCK_D: tl.constexpr,
    HAS_MASK: tl.constexpr,
    VARLEN: tl.constexpr,
    ROPE: tl.constexpr,
    DOT_PRECISION: tl.constexpr,
    BLOCK_M: tl.constexpr,
    BLOCK_N: tl.constexpr,
    EVEN_N: tl.constexpr,
):
    pid_n = tl.program_id(0)
    pid_bh = tl.program_id(1)
    b = (pid_bh // H).to(tl.int64)
    h = (pid_bh % H).to(tl.int64)
    if VARLEN:
        q_len = tl.minimum(tl.load(SeqlensQ + b), Lq)
        k_len = tl.minimum(tl.load(SeqlensK + b), Lk)
    else:
        q_len = Lq
        k_len = Lk
    offs_n = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    offs_d = tl.arange(0, BLOCK_D)
    key_valid = offs_n < k_len
    if HAS_MASK:
        key_valid = key_valid & (tl.load(Mask + b * stride_mb + offs_n, mask=key_valid, other=0) != 0)
    k_ptrs = K + b * stride_kb + h * stride_kh + offs_n[:, None] * stride_kl + offs_d[None, :]
    v_ptrs = V + b * stride_vb + h * stride_vh + offs_n[:, None] * stride_vl + offs_d[None, :]
    k = load_tile(k_ptrs, key_valid, offs_d, HEAD_DIM, BLOCK_D, True)
    v = load_tile(v_ptrs, key_valid, offs_d, HEAD_DIM, BLOCK_D, True)

    dk = tl.zeros([BLOCK_N, BLOCK_D], dtype=tl.float32)
    dv = tl.zeros([BLOCK_N, BLOCK_D], dtype=tl.float32)
    # A key block with nothing to attend to (past the length, or all masked) has zero gradients: no loop.
    q_hi = tl.where(tl.max(key_valid.to(tl.int32), 0) > 0, q_len, 0)
    q_full = q_hi // BLOCK_M * BLOCK_M
    Q += b * stride_qb + h * stride_qh
    DOut += b * stride_db + h * stride_dh
    Lse += pid_bh.to(tl.int64) * Lq
    Delta += pid_bh.to(tl.int64) * Lq
    MASK_KEYS: tl.constexpr = HAS_MASK or VARLEN or not EVEN_N
    for start_m in range(0, q_full, BLOCK_M):
        dk, dv = _dkdv_block(
            dk, dv, k, v, key_valid, Q, DOut, Lse, Delta, start_m, q_hi, stride_ql, stride_dl, qk_scale,
            HEAD_DIM, BLOCK_D, BLOCK_M, False, MASK_KEYS, DOT_PRECISION,
        )  # fmt: skip
    for start_m in range(q_full, q_hi, BLOCK_M):  # the partial last query block, if any
        dk, dv = _dkdv_block(
            dk, dv, k, v, key_valid, Q, DOut, Lse, Delta, start_m, q_hi, stride_ql, stride_dl, qk_scale,
            HEAD_DIM, BLOCK_D, BLOCK_M, True, MASK_KEYS, DOT_PRECISION,
        )  # fmt: skip

    dk = dk * sm_scale
    row_in = offs_n < Lk
    if ROPE:
        cos, sin = _load_angles(Cos, Sin, b * stride_cb, offs_n, row_in, stride_cl, HEAD_DIM, BLOCK_D)
        dk = rotate_pairs(dk, cos, sin, True)
    store_mask = row_in[:, None] & (offs_d[None, :] < HEAD_DIM)
    out_offsets = b * stride_gb + h * stride_gh + offs_n[:, None] * stride_gl + offs_d[None, :]
    tl.store(DK + out_offsets, round_to(dk, DK.dtype.element_ty), mask=store_mask)
    tl.store(DV + out_offsets, round_to(dv, DV.dtype.element_ty), mask=store_mask)


@triton.jit
def _dq_block(
    dq,
    q,
    do,
    lse,
    delta,
    K,
    V,
    Mask,
    start_n,
    k_len,
    stride_kl,
    stride_vl,
    qk_scale,
    HEAD_DIM: tl.constexpr,
    BLOCK_D: tl.constexpr,
    BLOCK_N: tl.constexpr,
    MASK_KEYS: tl.constexpr,
    HAS_MASK: tl.constexpr,
    DOT_PRECISION: tl.constexpr,
):
    """dQ of one query block accumulated over keys [start_n, start_n + BLOCK_N)."""
    offs_n = start_n + tl.arange(0, BLOCK_N)
    offs_d = tl.arange(0, BLOCK_D)
    valid = offs_n < k_len
    if HAS_MASK:
        valid = valid & (tl.load(Mask + offs_n, mask=valid, other=0) != 0)
    k = load_tile(
        K + offs_n[:, None] * stride_kl + offs_d[None, :], valid, offs_d, HEAD_DIM, BLOCK_D, MASK_KEYS
    )
    v = load_tile(
        V + offs_n[:, None] * stride_vl + offs_d[None, :], valid, offs_d, HEAD_DIM, BLOCK_D, MASK_KEYS
    )
    s = tl.dot(q, tl.trans(k), input_precision=DOT_PRECISION) * qk_scale
    p = tl.math.exp2(s - lse[:, None])
    if MASK_KEYS:
        p = tl.where(valid[None, :], p, 0.0)
    dp = tl.dot(do, tl.trans(v), input_precision=DOT_PRECISION)
    ds = p * (dp - delta[:, None])
    return tl.dot(dot_operand(ds, K.dtype.element_ty), k, dq, input_precision=DOT_PRECISION)


@triton.jit
def _attn_bwd_dq_kernel(
    Q,
    K,
    V,
    DOut,
    Lse,
    Delta,
    DQ,
    Mask,
    LiveBlocks,
    LiveCounts,
    SeqlensQ,
    SeqlensK,
    Cos,
    Sin,
    sm_scale,
    qk_scale,
    stride_qb,
    stride_ql,
    stride_qh,
    stride_kb,
    stride_kl,
    stride_kh,
    stride_vb,
    stride_vl,
    stride_vh,
    stride_db,
    stride_dl,
    stride_dh,
    stride_gb,
    stride_gl,
    stride_gh,
    stride_mb,
    stride_lb,
    stride_cb,
    stride_cl,
    H,
    Lq,
    Lk,
    seq_bucket,
    HEAD_DIM: tl.constexpr,
    BLOCK_D: tl.constexpr,
    HAS_MASK: tl.constexpr,
    VARLEN: tl.constexpr,
    ROPE: tl.constexpr,
    DOT_PRECISION: tl.constexpr,
    BLOCK_M: tl.constexpr,
    BLOCK_N: tl.constexpr,
):
    pid_m = tl.program_id(0)
    pid_bh = tl.program_id(1)
    b = (pid_bh // H).to(tl.int64)
    h = (pid_bh % H).to(tl.int64)
    if VARLEN:
        q_len = tl.minimum(tl.load(SeqlensQ + b), Lq)
        k_len = tl.minimum(tl.load(SeqlensK + b), Lk)
    else:
        q_len = Lq
        k_len = Lk
    start_m = pid_m * BLOCK_M
    offs_m = start_m + tl.arange(0, BLOCK_M)
    offs_d = tl.arange(0, BLOCK_D)
    row_in = offs_m < Lq
    q = load_tile(
        Q + b * stride_qb + h * stride_qh + offs_m[:, None] * stride_ql + offs_d[None, :],
        row_in, offs_d, HEAD_DIM, BLOCK_D, True,
    )  # fmt: skip
    do = load_tile(
        DOut + b * stride_db + h * stride_dh + offs_m[:, None] * stride_dl + offs_d[None, :],
        row_in, offs_d, HEAD_DIM, BLOCK_D, True,
    )  # fmt: skip
    # Rows past the length carry lse = +inf from the forward, so their probabilities and dQ are 0.
    lse = tl.load(Lse + pid_bh.to(tl.int64) * Lq + offs_m, mask=row_in, other=float("inf"))
    delta = tl.load(Delta + pid_bh.to(tl.int64) * Lq + offs_m, mask=row_in, other=0.0)

    dq = tl.zeros([BLOCK_M, BLOCK_D], dtype=tl.float32)
    k_hi = tl.where(start_m < q_len, k_len, 0)
    K += b * stride_kb + h * stride_kh
    V += b * stride_vb + h * stride_vh
    if HAS_MASK:
        tl.static_assert(BLOCK_N == _MASK_BLOCK_N, "the masked path walks blocks of MASK_BLOCK_N keys")
        Mask += b * stride_mb
        n_live = tl.where(start_m < q_len, tl.load(LiveCounts + b), 0)
        for i in range(0, n_live):
            start_n = tl.load(LiveBlocks + b * stride_lb + i) * BLOCK_N
            dq = _dq_block(
                dq, q, do, lse, delta, K, V, Mask, start_n, k_hi, stride_kl, stride_vl, qk_scale,
                HEAD_DIM, BLOCK_D, BLOCK_N, True, True, DOT_PRECISION,
            )  # fmt: skip
    else:
        k_full = k_hi // BLOCK_N * BLOCK_N
        for start_n in range(0, k_full, BLOCK_N):
            dq = _dq_block(
                dq, q, do, lse, delta, K, V, Mask, start_n, k_hi, stride_kl, stride_vl, qk_scale,
                HEAD_DIM, BLOCK_D, BLOCK_N, False, False, DOT_PRECISION,
            )  # fmt: skip
        for start_n in range(k_full, k_hi, BLOCK_N):
            dq = _dq_block(
                dq, q, do, lse, delta, K, V, Mask, start_n, k_hi, stride_kl, stride_vl, qk_scale,
                HEAD_DIM, BLOCK_D, BLOCK_N, True, False, DOT_PRECISION,
            )  # fmt: skip

    dq = dq * sm_scale
    if ROPE:
        cos, sin = _load_angles(Cos, Sin, b * stride_cb, offs_m, row_in, stride_cl, HEAD_DIM, BLOCK_D)
        dq = rotate_pairs(dq, cos, sin, True)
    dq_ptrs = DQ + b * stride_gb + h * stride_gh + offs_m[:, None] * stride_gl + offs_d[None, :]
    tl.store(dq_ptrs, round_to(dq, DQ.dtype.element_ty), mask=row_in[:, None] & (offs_d[None, :] < HEAD_DIM))


_attn_bwd_dkdv = _autotune("dkdv", _DKDV_CONFIGS)(
    triton.heuristics({"EVEN_N": lambda args: args["Lk"] % args["BLOCK_N"] == 0})(_attn_bwd_dkdv_kernel)
)
_attn_bwd_dq = _autotune("dq", _DQ_CONFIGS)(_attn_bwd_dq_kernel)


# --------------------------------------------------------------------------------------------------------------
# Launchers
# --------------------------------------------------------------------------------------------------------------


def _seq_bucket(length: int) -> int:
    """Autotune key for a sequence length: its power-of-two bucket, so varying lengths reuse one tuning."""
    return triton.next_power_of_2(max(length, 16))


def _block_d(head_dim: int) -> int:
    """Head dim padded to a power of two, at least 16 (the smallest `tl.dot` operand)."""
    return max(16, triton.next_power_of_2(head_dim))


def _strides(x: Tensor) -> tuple[int, int, int]:
    return x.stride(0), x.stride(1), x.stride(2)


def _angle_strides(cos: Tensor | None) -> tuple[int, int]:
    if cos is None:
        return 0, 0
    return (0 if cos.shape[0] == 1 else cos.stride(0)), cos.stride(1)


@dataclass(frozen=True)
class _KeyPlan:
    """What the kernels read about which keys each sample attends to; all None when every key counts."""

    lengths_q: Tensor | None = None  # (B,) int32
    lengths_k: Tensor | None = None  # (B,) int32
    mask: Tensor | None = None  # (B, Lk) uint8, lengths folded in
    live_blocks: Tensor | None = (
        None  # (B, ceil(Lk / MASK_BLOCK_N)) int32: blocks with a key, ascending, first
    )
    live_counts: Tensor | None = None  # (B,) int32: how many of them

    @property
    def strides(self) -> tuple[int, int]:
        return (0, 0) if self.mask is None else (self.mask.stride(0), self.live_blocks.stride(0))


def _key_plan(
    batch: int,
    lq: int,
    lk: int,
    key_padding_mask: Tensor | None,
    seqlens_q: Tensor | None,
    seqlens_k: Tensor | None,
    device: torch.device,
) -> _KeyPlan:
    """Per-sample lengths and, for a key-padding mask, the list of key blocks worth visiting.

    Computed on the device without a host sync. A mask bounds the key length at its last True entry, so
    trailing padding is never read, and only blocks of MASK_BLOCK_N keys holding a True entry are listed.
    """
    if key_padding_mask is None and seqlens_q is None and seqlens_k is None:
        return _KeyPlan()
    full = torch.full((batch,), max(lq, lk), dtype=torch.int32, device=device)
    lengths_q = (seqlens_q if seqlens_q is not None else full).to(torch.int32).contiguous()
    lengths_k = (seqlens_k if seqlens_k is not None else full).to(torch.int32).contiguous()
    if key_padding_mask is None:
        return _KeyPlan(lengths_q, lengths_k)
    positions = torch.arange(lk, dtype=torch.int32, device=device)
    allowed = key_padding_mask & (positions[None] < lengths_k[:, None])  # (B, Lk)
    lengths_k = (allowed.to(torch.int32) * (positions + 1)).amax(dim=1).to(torch.int32)  # last allowed + 1
    blocks = triton.cdiv(lk, MASK_BLOCK_N)
    padded = torch.zeros(batch, blocks * MASK_BLOCK_N, dtype=torch.bool, device=device)
    padded[:, :lk] = allowed
    live = padded.view(batch, blocks, MASK_BLOCK_N).any(dim=-1)  # (B, blocks)
    order = torch.sort((~live).to(torch.uint8), dim=1, stable=True).indices  # live blocks first, ascending
    return _KeyPlan(
        lengths_q,
        lengths_k,
        allowed.contiguous().view(torch.uint8),
        order.to(torch.int32).contiguous(),
        live.sum(dim=1, dtype=torch.int32),
    )


def _rotate(x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
    """x (B, L, H, D) rotated by (cos, sin), contiguous, in x's dtype."""
    batch, length, heads, head_dim = x.shape
    out = torch.empty(x.shape, dtype=x.dtype, device=x.device)
    block_l = 16 if INTERPRET else 64
    grid = (triton.cdiv(length, block_l), batch * heads)
    _rope_kernel[grid](
        x, out, cos, sin, *_strides(x), *_strides(out), *_angle_strides(cos), heads, length,
        HEAD_DIM=head_dim, BLOCK_D=_block_d(head_dim), BLOCK_L=block_l,
    )  # fmt: skip
    return out


def _forward(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    key_padding_mask: Tensor | None,
    seqlens_q: Tensor | None,
    seqlens_k: Tensor | None,
    cos: Tensor | None,
    sin: Tensor | None,
    softmax_scale: float,
    return_rotated: bool,
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    batch, lq, heads, head_dim = q.shape
    lk = k.shape[1]
    rope = cos is not None
    plan = _key_plan(batch, lq, lk, key_padding_mask, seqlens_q, seqlens_k, q.device)
    k_rot = _rotate(k, cos, sin) if rope else k
    out = torch.empty(q.shape, dtype=q.dtype, device=q.device)
    lse = torch.empty((batch, heads, lq), dtype=torch.float32, device=q.device)
    store_qrot = rope and return_rotated
    q_rot = torch.empty_like(out) if store_qrot else q.new_empty(0)
    grid = lambda meta: (triton.cdiv(lq, meta["BLOCK_M"]), batch * heads)  # noqa: E731
    _attn_fwd[grid](
        q, k_rot, v, out, lse, q_rot if store_qrot else out,
        plan.mask, plan.live_blocks, plan.live_counts, plan.lengths_q, plan.lengths_k, cos, sin,
        softmax_scale * LOG2E,
        *_strides(q), *_strides(k_rot), *_strides(v), *_strides(out), *plan.strides, *_angle_strides(cos),
        heads, lq, lk, _seq_bucket(max(lq, lk)),
        HEAD_DIM=head_dim, BLOCK_D=_block_d(head_dim),
        HAS_MASK=plan.mask is not None, VARLEN=plan.lengths_q is not None, ROPE=rope, STORE_QROT=store_qrot,
        DOT_PRECISION=dot_precision(q.dtype),
    )  # fmt: skip
    return out, lse, q_rot, (k_rot if store_qrot else k.new_empty(0))


def _backward(
    dout: Tensor,
    q: Tensor,
    k: Tensor,
    v: Tensor,
    out: Tensor,
    lse: Tensor,
    key_padding_mask: Tensor | None,
    seqlens_q: Tensor | None,
    seqlens_k: Tensor | None,
    cos: Tensor | None,
    sin: Tensor | None,
    softmax_scale: float,
) -> tuple[Tensor, Tensor, Tensor]:
    batch, lq, heads, head_dim = q.shape
    lk = k.shape[1]
    block_d = _block_d(head_dim)
    if dout.stride(-1) != 1:
        dout = dout.contiguous()
    plan = _key_plan(batch, lq, lk, key_padding_mask, seqlens_q, seqlens_k, q.device)

    delta = torch.empty_like(lse)
    block_m = 16 if INTERPRET else 64
    _bwd_preprocess_kernel[(triton.cdiv(lq, block_m), batch * heads)](
        out, dout, delta, *_strides(out), *_strides(dout), heads, lq,
        HEAD_DIM=head_dim, BLOCK_D=block_d, BLOCK_M=block_m,
    )  # fmt: skip

    dq = torch.empty(q.shape, dtype=q.dtype, device=q.device)
    dk = torch.empty(k.shape, dtype=k.dtype, device=k.device)
    dv = torch.empty(v.shape, dtype=v.dtype, device=v.device)
    common = dict(
        HEAD_DIM=head_dim,
        BLOCK_D=block_d,
        HAS_MASK=plan.mask is not None,
        VARLEN=plan.lengths_q is not None,
        ROPE=cos is not None,
        DOT_PRECISION=dot_precision(q.dtype),
    )
    tail = (*_angle_strides(cos), heads, lq, lk, _seq_bucket(max(lq, lk)))
    inputs = (q, k, v, dout, lse, delta)
    sizes = (*_strides(q), *_strides(k), *_strides(v), *_strides(dout))
    scales = (softmax_scale, softmax_scale * LOG2E)
    lengths = (plan.lengths_q, plan.lengths_k, cos, sin)
    stride_mb, stride_lb = plan.strides
    _attn_bwd_dkdv[lambda meta: (triton.cdiv(lk, meta["BLOCK_N"]), batch * heads)](
        *inputs, dk, dv, plan.mask, *lengths, *scales, *sizes, *_strides(dk), stride_mb, *tail, **common
    )
    _attn_bwd_dq[lambda meta: (triton.cdiv(lq, meta["BLOCK_M"]), batch * heads)](
        *inputs, dq, plan.mask, plan.live_blocks, plan.live_counts, *lengths, *scales, *sizes, *_strides(dq),
        stride_mb, stride_lb, *tail, **common,
    )  # fmt: skip
    return dq, dk, dv


# --------------------------------------------------------------------------------------------------------------
# Binding: custom ops (+ fake tensors for torch.compile) -> autograd.Function -> public function
# --------------------------------------------------------------------------------------------------------------


@torch.library.custom_op("omni_kernels::flash_attn_forward", mutates_args=())
def flash_attn_forward(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    key_padding_mask: Tensor | None,
    seqlens_q: Tensor | None,
    seqlens_k: Tensor | None,
    cos: Tensor | None,
    sin: Tensor | None,
    softmax_scale: float,
    return_rotated: bool,
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """(out (B, Lq, H, D), lse (B, H, Lq) fp32 base 2, q rotated, k rotated); the rotated pair is empty
    unless RoPE is applied and `return_rotated` asks for them (the backward reads them)."""
    return _forward(q, k, v, key_padding_mask, seqlens_q, seqlens_k, cos, sin, softmax_scale, return_rotated)


@flash_attn_forward.register_fake
def _(q, k, v, key_padding_mask, seqlens_q, seqlens_k, cos, sin, softmax_scale, return_rotated):
    batch, lq, heads, _ = q.shape
    rotated = cos is not None and return_rotated
    return (
        torch.empty(q.shape, dtype=q.dtype, device=q.device),
        q.new_empty((batch, heads, lq), dtype=torch.float32),
        torch.empty(q.shape, dtype=q.dtype, device=q.device) if rotated else q.new_empty(0),
        torch.empty(k.shape, dtype=k.dtype, device=k.device) if rotated else k.new_empty(0),
    )


@torch.library.custom_op("omni_kernels::flash_attn_backward", mutates_args=())
def flash_attn_backward(
    dout: Tensor,
    q: Tensor,
    k: Tensor,
    v: Tensor,
    out: Tensor,
    lse: Tensor,
    key_padding_mask: Tensor | None,
    seqlens_q: Tensor | None,
    seqlens_k: Tensor | None,
    cos: Tensor | None,
    sin: Tensor | None,
    softmax_scale: float,
) -> tuple[Tensor, Tensor, Tensor]:
    """(dq, dk, dv). With RoPE, q and k are the rotated ones and dq, dk are w.r.t. the un-rotated inputs."""
    return _backward(dout, q, k, v, out, lse, key_padding_mask, seqlens_q, seqlens_k, cos, sin, softmax_scale)


@flash_attn_backward.register_fake
def _(dout, q, k, v, out, lse, key_padding_mask, seqlens_q, seqlens_k, cos, sin, softmax_scale):
    return (
        torch.empty(q.shape, dtype=q.dtype, device=q.device),
        torch.empty(k.shape, dtype=k.dtype, device=k.device),
        torch.empty(v.shape, dtype=v.dtype, device=v.device),
    )


class FlashAttentionFunc(torch.autograd.Function):
    """Autograd for the custom ops; saves (rotated) q, k, v, out and the logsumexp."""

    @staticmethod
    def forward(ctx, q, k, v, key_padding_mask, seqlens_q, seqlens_k, cos, sin, softmax_scale):
        rope = cos is not None
        needs_grad = any(ctx.needs_input_grad[:3])
        out, lse, q_rot, k_rot = torch.ops.omni_kernels.flash_attn_forward(
            q, k, v, key_padding_mask, seqlens_q, seqlens_k, cos, sin, softmax_scale, rope and needs_grad
        )
        if needs_grad:
            q_saved, k_saved = (q_rot, k_rot) if rope else (q, k)
            ctx.save_for_backward(
                q_saved, k_saved, v, out, lse, key_padding_mask, seqlens_q, seqlens_k, cos, sin
            )
        ctx.softmax_scale = softmax_scale
        return out

    @staticmethod
    def backward(ctx, dout):
        q, k, v, out, lse, key_padding_mask, seqlens_q, seqlens_k, cos, sin = ctx.saved_tensors
        dq, dk, dv = torch.ops.omni_kernels.flash_attn_backward(
            dout, q, k, v, out, lse, key_padding_mask, seqlens_q, seqlens_k, cos, sin, ctx.softmax_scale
        )
        return dq, dk, dv, None, None, None, None, None, None


def _check_inputs(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    key_padding_mask: Tensor | None,
    seqlens_q: Tensor | None,
    seqlens_k: Tensor | None,
    rope: tuple[Tensor, Tensor] | None,
) -> None:
    if q.ndim != 4 or k.ndim != 4 or v.shape != k.shape:
        raise ValueError(
            f"flash_attention wants q (B, Lq, H, D) and k, v (B, Lk, H, D); got q {tuple(q.shape)}, "
            f"k {tuple(k.shape)}, v {tuple(v.shape)}"
        )
    batch, lq, heads, head_dim = q.shape
    if k.shape[0] != batch or k.shape[2] != heads or k.shape[3] != head_dim:
        raise ValueError(f"k/v shape {tuple(k.shape)} does not match q shape {tuple(q.shape)} in B, H or D")
    if not (q.dtype == k.dtype == v.dtype) or q.dtype not in (torch.float32, torch.float16, torch.bfloat16):
        raise ValueError(
            f"flash_attention wants q, k, v of one dtype among float32/float16/bfloat16; got {q.dtype}, "
            f"{k.dtype}, {v.dtype}"
        )
    if head_dim > MAX_HEAD_DIM:
        raise ValueError(f"head dim {head_dim} is larger than the kernels support ({MAX_HEAD_DIM})")
    if not triton_device_ok(q.device):
        raise ValueError(
            f"flash_attention runs on CUDA tensors (or CPU tensors with TRITON_INTERPRET=1), got {q.device}"
        )
    lk = k.shape[1]
    if key_padding_mask is not None and (
        key_padding_mask.shape != (batch, lk) or key_padding_mask.dtype != torch.bool
    ):
        raise ValueError(
            f"key_padding_mask must be bool (B, Lk) = {(batch, lk)}, got {key_padding_mask.dtype} "
            f"{tuple(key_padding_mask.shape)}"
        )
    for name, lengths in (("seqlens_q", seqlens_q), ("seqlens_k", seqlens_k)):
        if lengths is not None and (
            lengths.shape != (batch,) or lengths.dtype not in (torch.int32, torch.int64)
        ):
            raise ValueError(
                f"{name} must be an int32/int64 (B,) = ({batch},) tensor, got {tuple(lengths.shape)}"
            )
    if rope is not None:
        cos, sin = rope
        if lq != lk:
            raise ValueError(f"rope needs as many queries as keys, got Lq={lq}, Lk={lk}")
        if head_dim % 2:
            raise ValueError(f"rope needs an even head dim, got {head_dim}")
        if (
            cos.shape != sin.shape
            or cos.shape[0] not in (1, batch)
            or cos.shape[1:] != (lq, 1, head_dim // 2)
        ):
            raise ValueError(
                f"rope cos/sin must be (1 or B, L, 1, D/2) = (1 or {batch}, {lq}, 1, {head_dim // 2}), got "
                f"{tuple(cos.shape)} and {tuple(sin.shape)}"
            )


def _unit_stride(x: Tensor) -> Tensor:
    return x if x.stride(-1) == 1 else x.contiguous()


def flash_attention(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    *,
    key_padding_mask: Tensor | None = None,
    seqlens_q: Tensor | None = None,
    seqlens_k: Tensor | None = None,
    rope: tuple[Tensor, Tensor] | None = None,
    softmax_scale: float | None = None,
) -> Tensor:
    """Non-causal multi-head attention, fused forward and backward (Triton).

    Args:
        q: (B, Lq, H, D) queries; float32, float16 or bfloat16; D <= 256 (any size, padded in the kernel).
        k, v: (B, Lk, H, D) keys and values, same dtype.
        key_padding_mask: optional (B, Lk) bool, True where a key may be attended to. Key blocks with no True
            entry are skipped; keys after the last True entry are never read.
        seqlens_q, seqlens_k: optional (B,) int lengths of right-padded samples: query rows at or past
            seqlens_q[b] return 0 (and pass no gradient), keys at or past seqlens_k[b] are ignored.
        rope: optional (cos, sin), each (1 or B, L, 1, D/2) float32, applied to q and k on interleaved channel
            pairs as `omni.ops.rope.apply_rope` does; needs Lq == Lk. Gradients are w.r.t. the un-rotated q, k
            (none flow to cos/sin).
        softmax_scale: defaults to 1/sqrt(D).

    Returns:
        (B, Lq, H, D) in the dtype of q. Rows with no key to attend to are 0.
    """
    _check_inputs(q, k, v, key_padding_mask, seqlens_q, seqlens_k, rope)
    cos, sin = (None, None) if rope is None else (rope[0].float().contiguous(), rope[1].float().contiguous())
    scale = softmax_scale if softmax_scale is not None else 1.0 / math.sqrt(q.shape[-1])
    return FlashAttentionFunc.apply(
        _unit_stride(q),
        _unit_stride(k),
        _unit_stride(v),
        key_padding_mask,
        seqlens_q,
        seqlens_k,
        cos,
        sin,
        scale,
    )
