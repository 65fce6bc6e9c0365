"""Fused norm kernels against fp32 references: outputs and gradients within 2x PyTorch's low-precision error."""

import pytest
import torch
import torch.nn.functional as F

from omni.models.transformer import gated, modulate
from omni.ops.rope import apply_rope, rope_frequencies

pytest.importorskip("triton", reason="triton is not installed")

from omni_kernels import gated_residual, layer_norm_modulate, rms_norm_rope  # noqa: E402
from omni_kernels.testing import DEVICE, assert_within_reference, kernels_cannot_run_reason  # noqa: E402

pytestmark = pytest.mark.skipif(
    kernels_cannot_run_reason() is not None, reason=str(kernels_cannot_run_reason())
)

DTYPES = [torch.float32, torch.bfloat16, torch.float16]
EPS = 1e-6


def _randn(*shape, dtype=torch.float32, seed=0, scale=1.0):
    generator = torch.Generator(device="cpu").manual_seed(seed)
    return (torch.randn(shape, generator=generator) * scale).to(DEVICE, dtype).requires_grad_()


def _check(names, ours, torch_op, inputs, dout):
    """Our output and gradients w.r.t. `inputs` against `torch_op` run on fp32 copies, by the 2x rule.

    The low-precision PyTorch run is `torch_op` on `inputs` themselves; every run gets the same incoming
    gradient, as the low precision holds it.
    """
    low = torch_op(*inputs)
    ref_inputs = [x.detach().float().requires_grad_() for x in inputs]
    ref = torch_op(*ref_inputs)
    assert_within_reference(names[0], ours, low, ref)
    dout = dout.to(ours.dtype)
    grads = torch.autograd.grad(ours, inputs, dout)
    grads_low = torch.autograd.grad(low, inputs, dout)
    grads_ref = torch.autograd.grad(ref, ref_inputs, dout.float())
    for name, x, a, b, c in zip(names[1:], inputs, grads, grads_low, grads_ref):
        assert a.dtype == x.dtype and a.shape == x.shape
        assert_within_reference(name, a, b, c)


@pytest.mark.parametrize("groups", [1, 3, 12], ids=["per-sample", "per-frame", "per-token"])
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_layer_norm_modulate(dtype, groups):
    """The model's `modulate(norm1(x.float()), shift, scale).type_as(x)`, fp32 shift/scale per token group."""
    x = _randn(2, 12, 48, dtype=dtype, seed=1, scale=3.0)
    x.data += 2.0  # a mean far from 0 tests the fp32 statistics
    shift = _randn(2, groups, 48, seed=2)
    scale = _randn(2, groups, 48, seed=3, scale=0.5)
    dout = _randn(2, 12, 48, seed=4).detach()

    def torch_op(x, shift, scale):
        return modulate(F.layer_norm(x.float(), (48,), eps=EPS), shift, scale).type_as(x)

    ours = layer_norm_modulate(x, shift, scale, eps=EPS)
    _check(("out", "dx", "dshift", "dscale"), ours, torch_op, (x, shift, scale), dout)


@pytest.mark.parametrize("groups", [1, 4], ids=["per-sample", "per-frame"])
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_gated_residual(dtype, groups):
    """The model's `(x.float() + gated(y.float(), gate)).type_as(x)`."""
    x = _randn(2, 20, 40, dtype=dtype, seed=5)
    y = _randn(2, 20, 40, dtype=dtype, seed=6)
    gate = _randn(2, groups, 40, seed=7)
    dout = _randn(2, 20, 40, seed=8).detach()

    def torch_op(x, y, gate):
        return (x.float() + gated(y.float(), gate)).type_as(x)

    ours = gated_residual(x, y, gate)
    _check(("out", "dx", "dy", "dgate"), ours, torch_op, (x, y, gate), dout)


@pytest.mark.parametrize("rope", [True, False], ids=["rope", "norm-only"])
@pytest.mark.parametrize(("heads", "head_dim"), [(4, 16), (3, 24)], ids=["64ch", "72ch"])
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_rms_norm_rope(dtype, heads, head_dim, rope):
    """`apply_rope(RMSNorm(x).unflatten(-1, (H, D)), cos, sin)`, the q/k path of the model's joint attention."""
    channels = heads * head_dim
    x = _randn(2, 15, channels, dtype=dtype, seed=9, scale=2.0)
    weight = _randn(channels, dtype=dtype, seed=10, scale=0.5)
    weight.data += 1.0
    dout = _randn(2, 15, heads, head_dim, seed=11).detach()
    grid = torch.stack(torch.meshgrid(torch.arange(3), torch.arange(5), torch.arange(1), indexing="ij"), -1)
    cos, sin = rope_frequencies(grid.reshape(-1, 3).to(DEVICE), head_dim)  # (15, D/2)
    angles = (cos[None, :, None], sin[None, :, None]) if rope else None

    def torch_op(x, weight):
        normed = F.rms_norm(x, (channels,), weight, EPS).unflatten(-1, (heads, head_dim))
        return apply_rope(normed, *angles) if rope else normed

    ours = rms_norm_rope(x, weight, angles, heads=heads, eps=EPS)
    assert ours.shape == (2, 15, heads, head_dim)
    _check(("out", "dx", "dweight"), ours, torch_op, (x, weight), dout)


def test_backward_reduces_across_many_row_chunks():
    """Long groups split over several programs: the partial sums of dshift/dscale fold to the full sums."""
    x = _randn(1, 300, 32, seed=12)
    shift, scale = _randn(1, 2, 32, seed=13), _randn(1, 2, 32, seed=14)
    dout = _randn(1, 300, 32, seed=15).detach()
    ours = torch.autograd.grad(layer_norm_modulate(x, shift, scale, eps=EPS), (shift, scale), dout)
    ref = modulate(F.layer_norm(x, (32,), eps=EPS), shift, scale)
    expected = torch.autograd.grad(ref, (shift, scale), dout)
    for a, b in zip(ours, expected):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


def test_rejects_groups_that_do_not_divide_the_tokens():
    x = _randn(2, 10, 16)
    with pytest.raises(ValueError, match="G dividing L=10"):
        layer_norm_modulate(x, _randn(2, 3, 16), _randn(2, 3, 16))
    with pytest.raises(ValueError, match="heads=3 must divide"):
        rms_norm_rope(x, _randn(16), heads=3)


def test_norm_custom_ops_pass_opcheck():
    x = _randn(2, 6, 16, seed=16).detach()
    mod = _randn(2, 3, 16, seed=17).detach()
    torch.library.opcheck(torch.ops.omni_kernels.layer_norm_modulate_forward, (x, mod, mod, EPS))
    out, mean, rstd = torch.ops.omni_kernels.layer_norm_modulate_forward(x, mod, mod, EPS)
    torch.library.opcheck(torch.ops.omni_kernels.layer_norm_modulate_backward, (out, x, mod, mean, rstd))
    torch.library.opcheck(torch.ops.omni_kernels.gated_residual_forward, (x, x, mod))
    torch.library.opcheck(torch.ops.omni_kernels.gated_residual_backward, (x, x, mod))
    weight = _randn(16, seed=18).detach()
    cos, sin = (torch.rand(1, 6, 1, 4, device=DEVICE) for _ in range(2))
    torch.library.opcheck(torch.ops.omni_kernels.rms_norm_rope_forward, (x, weight, cos, sin, 2, EPS))
    out, rstd = torch.ops.omni_kernels.rms_norm_rope_forward(x, weight, cos, sin, 2, EPS)
    torch.library.opcheck(torch.ops.omni_kernels.rms_norm_rope_backward, (out, x, weight, cos, sin, rstd))
