"""Flash attention kernels against an fp32 reference: forward and dq/dk/dv within 2x PyTorch's low-precision error."""

import math

import pytest
import torch

from omni.ops.attention import attention
from omni.ops.rope import rope_frequencies

pytest.importorskip("triton", reason="triton is not installed")

from omni_kernels import flash_attention  # noqa: E402
from omni_kernels.testing import (  # noqa: E402
    DEVICE,
    assert_within_reference,
    attention_ref,
    kernels_cannot_run_reason,
)

pytestmark = pytest.mark.skipif(
    kernels_cannot_run_reason() is not None, reason=str(kernels_cannot_run_reason())
)
requires_gpu = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")

DTYPES = [torch.float32, torch.bfloat16, torch.float16]


def _rope(length: int, head_dim: int, batch: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """(cos, sin) (batch, L, 1, D/2) for a (frames, rows, cols) grid flattened to `length` tokens."""
    frames = -(-length // 20)
    grid = torch.stack(
        torch.meshgrid(torch.arange(frames), torch.arange(4), torch.arange(5), indexing="ij"), -1
    )
    positions = grid.reshape(-1, 3)[:length] * torch.tensor([1.5, 1.0, 1.0], dtype=torch.float64)  # (L, 3)
    cos, sin = rope_frequencies(positions.to(DEVICE), head_dim)
    return cos[None, :, None].expand(batch, -1, -1, -1), sin[None, :, None].expand(batch, -1, -1, -1)


def _inputs(batch, lq, lk, heads, head_dim, dtype, seed=0):
    generator = torch.Generator(device="cpu").manual_seed(seed)
    shapes = [(batch, lq, heads, head_dim), (batch, lk, heads, head_dim), (batch, lk, heads, head_dim)]
    tensors = [torch.randn(shape, generator=generator).to(DEVICE, dtype) for shape in shapes]
    dout = torch.randn(shapes[0], generator=generator).to(DEVICE, dtype)
    return [t.requires_grad_() for t in tensors], dout


def _check_against_reference(q, k, v, dout, **kwargs):
    """Run ours, PyTorch in q's dtype and fp32 PyTorch; compare outputs and dq, dk, dv by the 2x rule."""
    out = flash_attention(q, k, v, **kwargs)
    out_low = attention_ref(q, k, v, upcast=False, **kwargs)
    ref_inputs = [t.detach().float().requires_grad_() for t in (q, k, v)]
    out_ref = attention_ref(*ref_inputs, **kwargs)
    assert out.shape == q.shape and out.dtype == q.dtype
    assert_within_reference("out", out, out_low, out_ref)
    grads = torch.autograd.grad(out, (q, k, v), dout)
    grads_low = torch.autograd.grad(out_low, (q, k, v), dout)
    grads_ref = torch.autograd.grad(out_ref, ref_inputs, dout.float())
    for name, ours, low, ref in zip(("dq", "dk", "dv"), grads, grads_low, grads_ref):
        assert ours.dtype == q.dtype
        assert_within_reference(name, ours, low, ref)
    return out, grads


@pytest.mark.parametrize("head_dim", [16, 64, 72, 128])
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_cross_lengths_not_multiples_of_blocks(dtype, head_dim):
    """Lq != Lk, neither a multiple of any block size: partial query and key blocks on both sides."""
    (q, k, v), dout = _inputs(2, 57, 130, 2, head_dim, dtype)
    _check_against_reference(q, k, v, dout)


@pytest.mark.slow
@pytest.mark.parametrize("head_dim", [16, 64, 72, 128])
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_key_padding_mask_and_rope(dtype, head_dim):
    """A mask with holes, a fully masked 64-key block and trailing padding, with RoPE fused in both passes."""
    (q, k, v), dout = _inputs(2, 130, 130, 2, head_dim, dtype, seed=1)
    generator = torch.Generator(device="cpu").manual_seed(2)
    mask = torch.rand(2, 130, generator=generator) > 0.25
    mask[0, 64:128] = False  # a whole key block of every candidate config
    mask[1, 90:] = False  # trailing padding
    _check_against_reference(q, k, v, dout, key_padding_mask=mask.to(DEVICE), rope=_rope(130, head_dim))


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_rope_with_per_sample_angles(dtype):
    """cos/sin given per sample (B, L, 1, D/2) rather than broadcast over the batch."""
    (q, k, v), dout = _inputs(2, 100, 100, 2, 64, dtype, seed=3)
    cos, sin = _rope(100, 64, batch=2)
    cos, sin = cos.clone(), sin.clone()
    cos[1], sin[1] = cos[0].flip(0), sin[0].flip(0)
    _check_against_reference(q, k, v, dout, rope=(cos, sin))


@pytest.mark.slow
@pytest.mark.parametrize("rope", [False, True], ids=["plain", "rope"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=str)
def test_varlen_skips_padding_and_zeroes_padded_rows(dtype, rope):
    """Per-sample lengths: padded query rows are exactly 0 with zero gradient; padded keys are ignored."""
    (q, k, v), dout = _inputs(2, 130, 130, 2, 64, dtype, seed=4)
    lengths = torch.tensor([130, 71], dtype=torch.int32, device=DEVICE)
    kwargs = {"seqlens_q": lengths, "seqlens_k": lengths, "rope": _rope(130, 64) if rope else None}
    out, (dq, dk, dv) = _check_against_reference(q, k, v, dout, **kwargs)
    assert out[1, 71:].abs().max() == 0
    for grad in (dq, dk, dv):
        assert grad[1, 71:].abs().max() == 0
    # Whatever sits in the padding does not change the real tokens' results.
    with torch.no_grad():
        noisy = [t.detach().clone() for t in (q, k, v)]
        for t in noisy:
            t[1, 71:] = 1e4
        assert torch.equal(flash_attention(*noisy, **kwargs)[1, :71], out[1, :71])


def test_varlen_equals_attention_on_the_trimmed_sample():
    """A padded sample with its length gives what the unpadded sample gives alone."""
    (q, k, v), _ = _inputs(2, 96, 96, 2, 64, torch.float32, seed=5)
    lengths = torch.tensor([96, 40], dtype=torch.int32, device=DEVICE)
    padded = flash_attention(q, k, v, seqlens_q=lengths, seqlens_k=lengths, rope=_rope(96, 64))
    cos, sin = _rope(40, 64)
    alone = flash_attention(q[1:, :40], k[1:, :40], v[1:, :40], rope=(cos, sin))
    torch.testing.assert_close(padded[1:, :40], alone, rtol=0, atol=1e-6)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=str)
def test_head_dim_below_the_smallest_matmul_tile(dtype):
    """D=8 pads to 16 channels, the smallest tl.dot operand, with RoPE on the 4 real pairs."""
    (q, k, v), dout = _inputs(2, 40, 40, 2, 8, dtype, seed=13)
    _check_against_reference(q, k, v, dout, rope=_rope(40, 8))


def test_masked_kernels_visit_only_key_blocks_with_keys():
    """The plan the masked kernels walk: live blocks first in order, the length at the last allowed key."""
    from omni_kernels.attention import MASK_BLOCK_N, _key_plan

    n = MASK_BLOCK_N
    mask = torch.ones(3, 4 * n, dtype=torch.bool, device=DEVICE)
    mask[0, n : 2 * n] = False  # block 1 dead
    mask[1, 3 * n - 5 :] = False  # ends inside block 2
    mask[2] = False
    seqlens_k = torch.tensor([4 * n, n + 3, 4 * n], device=DEVICE)
    plan = _key_plan(3, 4 * n, 4 * n, mask, None, seqlens_k, DEVICE)
    assert plan.live_counts.tolist() == [3, 2, 0]
    assert plan.live_blocks[0, :3].tolist() == [0, 2, 3] and plan.live_blocks[1, :2].tolist() == [0, 1]
    assert plan.lengths_k.tolist() == [4 * n, n + 3, 0]  # sample 1: seqlens_k cuts before the mask does
    assert plan.mask[1, n + 3 :].sum() == 0  # the lengths are folded into the mask the kernels read


def test_sample_with_no_keys_gives_zeros_not_nan():
    (q, k, v), dout = _inputs(2, 40, 40, 2, 16, torch.float32, seed=6)
    mask = torch.ones(2, 40, dtype=torch.bool, device=DEVICE)
    mask[1] = False
    out = flash_attention(q, k, v, key_padding_mask=mask)
    dq, dk, dv = torch.autograd.grad(out, (q, k, v), dout)
    assert out[1].abs().max() == 0 and not out.isnan().any()
    for grad in (dq, dk, dv):
        assert grad[1].abs().max() == 0 and not grad.isnan().any()


def test_dispatch_backend_matches_sdpa_with_mask_and_rope():
    """`attention(..., backend="triton")` (fused RoPE) against the `sdpa` backend (RoPE applied before)."""
    (q, k, v), dout = _inputs(2, 70, 70, 2, 32, torch.bfloat16, seed=7)
    mask = torch.ones(2, 70, dtype=torch.bool, device=DEVICE)
    mask[1, 50:] = False
    rope = _rope(70, 32)
    ours = attention(q, k, v, key_padding_mask=mask, rope=rope, backend="triton")
    sdpa = attention(q, k, v, key_padding_mask=mask, rope=rope, backend="sdpa")
    ref_inputs = [t.detach().float().requires_grad_() for t in (q, k, v)]
    ref = attention(*ref_inputs, key_padding_mask=mask, rope=rope, backend="sdpa")
    assert_within_reference("out", ours, sdpa, ref)
    grads = torch.autograd.grad(ours, (q, k, v), dout)
    grads_sdpa = torch.autograd.grad(sdpa, (q, k, v), dout)
    grads_ref = torch.autograd.grad(ref, ref_inputs, dout.float())
    for name, a, b, c in zip(("dq", "dk", "dv"), grads, grads_sdpa, grads_ref):
        assert_within_reference(name, a, b, c)


def test_non_contiguous_inputs_and_custom_scale():
    """Strided q/k/v (a fused qkv projection split without copies) and an explicit softmax scale."""
    generator = torch.Generator(device="cpu").manual_seed(8)
    qkv = torch.randn(2, 50, 3, 2, 32, generator=generator).to(DEVICE)
    q, k, v = qkv.unbind(2)  # each (B, L, H, D), strided over L
    scale = 0.3
    out = flash_attention(q, k, v, softmax_scale=scale)
    ref = attention_ref(q * (scale * math.sqrt(32)), k, v)
    torch.testing.assert_close(out, ref, rtol=0, atol=2e-6)


def test_rejects_inputs_it_cannot_run():
    (q, k, v), _ = _inputs(1, 8, 8, 2, 16, torch.float32)
    with pytest.raises(ValueError, match="one dtype"):
        flash_attention(q, k.half(), v)
    with pytest.raises(ValueError, match="key_padding_mask"):
        flash_attention(q, k, v, key_padding_mask=torch.ones(1, 9, dtype=torch.bool, device=DEVICE))
    with pytest.raises(ValueError, match="as many queries as keys"):
        flash_attention(q[:, :4], k, v, rope=_rope(8, 16))
    with pytest.raises(ValueError, match="head dim"):
        big = torch.zeros(1, 8, 1, 512, device=DEVICE)
        flash_attention(big, big, big)


def test_custom_ops_pass_opcheck():
    """Schema, fake-tensor and AOT-dispatch checks, which torch.compile relies on."""
    (q, k, v), dout = _inputs(1, 20, 20, 2, 16, torch.float32, seed=9)
    q, k, v = (t.detach() for t in (q, k, v))
    cos, sin = (a.contiguous() for a in _rope(20, 16))
    mask = torch.ones(1, 20, dtype=torch.bool, device=DEVICE)
    mask[0, 15:] = False
    forward = (q, k, v, mask, None, None, cos, sin, 0.25, True)
    torch.library.opcheck(torch.ops.omni_kernels.flash_attn_forward, forward)
    out, lse, q_rot, k_rot = torch.ops.omni_kernels.flash_attn_forward(*forward)
    backward = (dout, q_rot, k_rot, v, out, lse, mask, None, None, cos, sin, 0.25)
    torch.library.opcheck(torch.ops.omni_kernels.flash_attn_backward, backward)


@pytest.mark.slow
def test_torch_compile_fullgraph_matches_eager():
    (q, k, v), dout = _inputs(1, 24, 24, 2, 16, torch.float32, seed=10)
    rope = tuple(a.contiguous() for a in _rope(24, 16))

    def step(q, k, v):
        return flash_attention(q, k, v, rope=rope).square().sum()

    compiled = torch.compile(step, fullgraph=True, backend="aot_eager")
    eager_grads = torch.autograd.grad(step(q, k, v), (q, k, v))
    compiled_grads = torch.autograd.grad(compiled(q, k, v), (q, k, v))
    for a, b in zip(eager_grads, compiled_grads):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


@requires_gpu
@pytest.mark.gpu
@pytest.mark.parametrize("head_dim", [64, 128])
def test_long_sequence_bf16_on_gpu(head_dim):
    """4k+ tokens with mask and RoPE: the accuracy rule at the lengths the model runs."""
    length = 4096 + 37
    (q, k, v), dout = _inputs(1, length, length, 4, head_dim, torch.bfloat16, seed=11)
    mask = torch.ones(1, length, dtype=torch.bool, device=DEVICE)
    mask[0, 1000:1500] = False
    mask[0, -100:] = False
    _check_against_reference(q, k, v, dout, key_padding_mask=mask, rope=_rope(length, head_dim))


@requires_gpu
@pytest.mark.gpu
def test_forward_speed_is_in_the_range_of_sdpa_on_gpu():
    """A sanity floor, not the performance goal: at 16k tokens, d=128, ours is at least half sdpa's speed."""
    from triton.testing import do_bench

    (q, k, v), _ = _inputs(1, 16384, 16384, 16, 128, torch.bfloat16, seed=12)
    q, k, v = (t.detach() for t in (q, k, v))
    ours = do_bench(lambda: attention(q, k, v, backend="triton"))
    timings = {}
    for backend in ("sdpa_flash", "sdpa_cudnn"):
        try:
            timings[backend] = do_bench(lambda b=backend: attention(q, k, v, backend=b))
        except RuntimeError:  # a backend this GPU or build lacks
            continue
    if not timings:
        pytest.skip("no sdpa flash or cuDNN kernel runs on this GPU")
    best = min(timings, key=timings.get)
    assert ours <= 2 * timings[best], f"triton {ours:.2f} ms vs {best} {timings[best]:.2f} ms"
