"""End to end: a tiny OmniTransformer on the `triton` backend (and fused norms) matches the `sdpa` backend."""

import pytest
import torch

from omni.models import LatentStream, OmniTransformer
from omni.models.transformer import cast_keeping_fp32
from tests.helpers import TINY_TRANSFORMER, randomize

pytest.importorskip("triton", reason="triton is not installed")

from omni_kernels.testing import DEVICE, kernels_cannot_run_reason  # noqa: E402

pytestmark = pytest.mark.skipif(
    kernels_cannot_run_reason() is not None, reason=str(kernels_cannot_run_reason())
)


def _tiny_model(dtype: torch.dtype = torch.float32) -> OmniTransformer:
    """The tests' tiny model with random weights (off adaLN-zero, so attention and norms shape the output)."""
    model = randomize(OmniTransformer(**TINY_TRANSFORMER)).to(DEVICE)
    return cast_keeping_fp32(model, dtype)


def _inputs(dtype: torch.dtype = torch.float32):
    """Video (first frame clean) and audio (sample 1 padded after 7 frames) with a padded text batch."""
    generator = torch.Generator().manual_seed(1)
    video = LatentStream(
        "video",
        torch.randn(2, 4, 3, 4, 4, generator=generator).to(DEVICE, dtype),
        timesteps=torch.tensor([[0.0, 700.0, 700.0], [0.0, 300.0, 300.0]], device=DEVICE),
    )
    audio_mask = torch.ones(2, 10, dtype=torch.bool, device=DEVICE)
    audio_mask[1, 7:] = False
    audio = LatentStream(
        "audio",
        torch.randn(2, 2, 10, 4, generator=generator).to(DEVICE, dtype),
        timesteps=torch.full((2, 10), 500.0, device=DEVICE),
        frame_seconds=0.1,
        token_mask=audio_mask,
    )
    text = torch.randn(2, 5, 16, generator=generator).to(DEVICE, dtype)
    text_mask = torch.tensor([[True] * 5, [True] * 3 + [False] * 2], device=DEVICE)
    return [video, audio], text, text_mask


def _run(model: OmniTransformer, backend: str, fused_norms: bool = False):
    """Outputs and the gradients of a fixed loss w.r.t. every parameter."""
    model.set_attention_backend(backend)
    model.set_fused_norms(fused_norms)
    model.zero_grad(set_to_none=True)
    streams, text, text_mask = _inputs(model.experts["video"].patch_embedding.weight.dtype)
    outputs = model(streams, text, text_mask)
    loss = sum(
        (out.float() * torch.linspace(-1, 1, out.numel(), device=DEVICE).view_as(out)).sum()
        for out in outputs
    )
    loss.backward()
    grads = {
        name: param.grad.detach().clone()
        for name, param in model.named_parameters()
        if param.grad is not None
    }
    return [out.detach() for out in outputs], grads


@pytest.mark.slow
@pytest.mark.parametrize("fused_norms", [False, True], ids=["torch-norms", "fused-norms"])
def test_triton_backend_matches_sdpa_forward_and_gradients(fused_norms):
    model = _tiny_model()
    outputs_sdpa, grads_sdpa = _run(model, "sdpa")
    outputs, grads = _run(model, "triton", fused_norms)
    for ours, theirs in zip(outputs, outputs_sdpa):
        torch.testing.assert_close(ours, theirs, rtol=1e-4, atol=1e-5)
    assert grads.keys() == grads_sdpa.keys()
    for name in grads:
        torch.testing.assert_close(grads[name], grads_sdpa[name], rtol=1e-3, atol=1e-5, msg=name)


@pytest.mark.slow
def test_bf16_model_error_is_within_twice_sdpa_error():
    """In bf16, the triton backend with fused norms is no further from the fp32 model than 2x sdpa's bf16 run."""
    reference, _ = _run(_tiny_model(torch.float32), "sdpa")
    model = _tiny_model(torch.bfloat16)
    low, _ = _run(model, "sdpa")
    ours, _ = _run(model, "triton", fused_norms=True)
    for a, b, ref in zip(ours, low, reference):
        err = (a.float() - ref).abs().max().item()
        base = (b.float() - ref).abs().max().item()
        assert err <= 2 * base, f"triton bf16 error {err:.3e} vs sdpa bf16 error {base:.3e}"
