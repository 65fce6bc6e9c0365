"""Attention dispatch: every backend equals sdpa; masks, RoPE and backend choice behave as documented."""

import math

import pytest
import torch

from omni.ops import (
    active_backend_name,
    apply_rope,
    attention,
    available_backends,
    get_backend,
    rope_frequencies,
    use_attention_backend,
)


def qkv(batch=2, lq=37, lk=37, heads=3, dim=16, dtype=torch.float32, device="cpu", seed=0):
    g = torch.Generator().manual_seed(seed)
    make = lambda length: torch.randn(batch, length, heads, dim, generator=g).to(device, dtype)  # noqa: E731
    return make(lq), make(lk), make(lk)


def reference(q, k, v, mask=None):
    scores = torch.einsum("bqhd,bkhd->bhqk", q.double(), k.double()) / math.sqrt(q.shape[-1])
    if mask is not None:
        scores = scores.masked_fill(~mask[:, None, None, :], float("-inf"))
    return torch.einsum("bhqk,bkhd->bqhd", scores.softmax(-1), v.double())


def test_sdpa_matches_the_definition():
    q, k, v = qkv()
    assert torch.allclose(attention(q, k, v, backend="sdpa").double(), reference(q, k, v), atol=1e-5)


@pytest.mark.parametrize("name", available_backends())
def test_every_available_backend_equals_sdpa(name):
    backend = get_backend(name)
    device = "cuda" if "cpu" not in backend.devices and torch.cuda.is_available() else "cpu"
    dtype = torch.float32 if torch.float32 in backend.dtypes else torch.bfloat16
    q, k, v = qkv(dtype=dtype, device=device, dim=64)
    if backend.unsupported_reason(q, k, None) is not None:
        pytest.skip(f"{name} cannot run here: {backend.unsupported_reason(q, k, None)}")
    cos, sin = rope_frequencies(torch.rand(37, 3, dtype=torch.float64) * 10, 64)
    rope = (cos[None, :, None].to(device), sin[None, :, None].to(device))
    mask = torch.rand(2, 37, generator=torch.Generator().manual_seed(3)).to(device) > 0.3
    tol = 1e-5 if dtype == torch.float32 else 2e-2
    for kwargs in (
        {},
        {"rope": rope},
        {"key_padding_mask": mask} if backend.supports_key_padding_mask else {},
    ):
        expected = attention(q, k, v, backend="sdpa", **kwargs)
        assert (attention(q, k, v, backend=name, **kwargs).float() - expected.float()).abs().max() < tol


def test_key_padding_mask_hides_keys():
    q, k, v = qkv()
    mask = torch.ones(2, 37, dtype=torch.bool)
    mask[:, 20:] = False
    k2, v2 = k.clone(), v.clone()
    k2[:, 20:] += 5
    v2[:, 20:] -= 5
    assert torch.allclose(
        attention(q, k, v, key_padding_mask=mask), attention(q, k2, v2, key_padding_mask=mask), atol=1e-6
    )
    assert torch.allclose(
        attention(q, k, v, key_padding_mask=mask).double(), reference(q, k, v, mask), atol=1e-5
    )


def test_rope_is_applied_to_queries_and_keys():
    q, k, v = qkv()
    cos, sin = rope_frequencies(torch.rand(37, 3, dtype=torch.float64) * 20, 16)
    rope = (cos[None, :, None], sin[None, :, None])
    fused = attention(q, k, v, rope=rope)
    manual = attention(apply_rope(q, *rope), apply_rope(k, *rope), v)
    assert torch.allclose(fused, manual, atol=1e-6)


def test_rope_matches_wans_layout():
    """Interleaved pairs with axis split t | h | w, as diffusers' WanRotaryPosEmbed + apply_rotary_emb."""
    from diffusers.models.transformers.transformer_wan import WanRotaryPosEmbed

    wan_rope = WanRotaryPosEmbed(attention_head_dim=24, patch_size=(1, 2, 2), max_seq_len=32)
    wan_cos, wan_sin = wan_rope(torch.zeros(1, 4, 3, 8, 10))  # (1, L, 1, D) repeated per pair
    t, h, w = torch.meshgrid(torch.arange(3.0), torch.arange(4.0), torch.arange(5.0), indexing="ij")
    cos, sin = rope_frequencies(torch.stack([t, h, w], -1).reshape(-1, 3).double(), 24)
    assert torch.allclose(cos, wan_cos[0, :, 0, 0::2], atol=1e-6)
    assert torch.allclose(sin, wan_sin[0, :, 0, 1::2], atol=1e-6)


def test_rope_preserves_norms_and_relative_positions():
    x = torch.randn(1, 2, 1, 16)
    pos = torch.tensor([[1.5, 2.0, 3.0], [4.0, 1.0, 0.0]], dtype=torch.float64)
    cos, sin = rope_frequencies(pos, 16)
    rotated = apply_rope(x, cos[None, :, None], sin[None, :, None])
    assert torch.allclose(rotated.norm(dim=-1), x.norm(dim=-1), atol=1e-5)
    shifted_cos, shifted_sin = rope_frequencies(pos + 7.25, 16)
    a = apply_rope(x, cos[None, :, None], sin[None, :, None])
    b = apply_rope(x, shifted_cos[None, :, None], shifted_sin[None, :, None])
    assert torch.allclose((a[0, 0] * a[0, 1]).sum(), (b[0, 0] * b[0, 1]).sum(), atol=1e-4)


def test_backend_choice_by_context_and_environment(monkeypatch):
    assert active_backend_name() == "sdpa"
    monkeypatch.setenv("OMNI_ATTENTION_BACKEND", "no_such_backend")
    with pytest.raises(ValueError, match="unknown attention backend 'no_such_backend'"):
        attention(*qkv())
    with use_attention_backend("sdpa"):
        assert active_backend_name() == "sdpa"
        attention(*qkv())


def test_backends_refuse_inputs_they_cannot_run():
    if torch.cuda.is_available():
        pytest.skip("checks a CUDA-only backend on the CPU")
    with pytest.raises(ValueError, match="sdpa_flash.*device 'cpu'"):
        attention(*qkv(), backend="sdpa_flash")
