"""One attention entry point with registered backends.

Every attention in omni calls `attention(q, k, v, ...)`. A backend is a function plus the constraints it
declares (devices, dtypes, head dims, key-padding masks, fused RoPE); `sdpa` is the default and the reference
every other backend is tested against. Backends that are not installed are simply not registered; the Triton
backend registers itself from the `omni_kernels` package.

The active backend is, in order: the `backend=` argument, `use_attention_backend(...)` context,
the `OMNI_ATTENTION_BACKEND` environment variable, then `sdpa`.

Not diffusers' `attention_dispatch`: its registry is keyed by a closed enum (`AttentionBackendName`), so
`omni_kernels` could not register its Triton backend there, and `dispatch_attention_fn` takes no RoPE angles,
which the Triton backend applies inside the kernel.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor

from omni.ops.rope import apply_rope

ENV_VAR = "OMNI_ATTENTION_BACKEND"
DEFAULT_BACKEND = "sdpa"

# fn(q, k, v, key_padding_mask, rope) -> out; q (B, Lq, H, D), k/v (B, Lk, H, D), mask (B, Lk) bool (True = attend)
AttentionFn = Callable[[Tensor, Tensor, Tensor, "Tensor | None", "tuple[Tensor, Tensor] | None"], Tensor]


@dataclass(frozen=True)
class AttentionBackend:
    """An attention implementation and what it supports."""

    name: str
    fn: AttentionFn
    devices: frozenset[str] = frozenset({"cpu", "cuda"})
    dtypes: frozenset[torch.dtype] = frozenset({torch.float32, torch.float16, torch.bfloat16})
    max_head_dim: int | None = None
    head_dim_multiple: int = 1
    supports_key_padding_mask: bool = True
    supports_rope: bool = False  # True: applies (cos, sin) to q and k itself, fused
    description: str = ""
    extra: dict = field(default_factory=dict)

    def unsupported_reason(self, q: Tensor, k: Tensor, key_padding_mask: Tensor | None) -> str | None:
        """Why this backend cannot run these inputs, or None when it can."""
        if q.device.type not in self.devices:
            return f"device {q.device.type!r} (supports {sorted(self.devices)})"
        if q.dtype not in self.dtypes:
            return f"dtype {q.dtype} (supports {sorted(str(d) for d in self.dtypes)})"
        head_dim = q.shape[-1]
        if self.max_head_dim is not None and head_dim > self.max_head_dim:
            return f"head dim {head_dim} (at most {self.max_head_dim})"
        if head_dim % self.head_dim_multiple:
            return f"head dim {head_dim} (must be a multiple of {self.head_dim_multiple})"
        if key_padding_mask is not None and not self.supports_key_padding_mask:
            return "a key-padding mask (not supported)"
        return None


_BACKENDS: dict[str, AttentionBackend] = {}
_active: list[str] = []


def register_backend(backend: AttentionBackend) -> None:
    """Add or replace a backend under `backend.name`."""
    _BACKENDS[backend.name] = backend


def available_backends() -> list[str]:
    """Names of the backends that are installed and registered."""
    return sorted(_BACKENDS)


def get_backend(name: str) -> AttentionBackend:
    if name not in _BACKENDS:
        raise ValueError(f"unknown attention backend {name!r}; available: {available_backends()}")
    return _BACKENDS[name]


def active_backend_name() -> str:
    """The backend `attention()` uses when none is passed explicitly."""
    if _active:
        return _active[-1]
    return os.environ.get(ENV_VAR) or DEFAULT_BACKEND


@contextlib.contextmanager
def use_attention_backend(name: str | None) -> Iterator[None]:
    """Use backend `name` for every `attention()` call inside the block (None keeps the current one)."""
    if name is None:
        yield
        return
    get_backend(name)
    _active.append(name)
    try:
        yield
    finally:
        _active.pop()


def attention(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    *,
    key_padding_mask: Tensor | None = None,
    rope: tuple[Tensor, Tensor] | None = None,
    backend: str | None = None,
) -> Tensor:
    """Non-causal multi-head attention with softmax scale 1/sqrt(head_dim).

    Args:
        q: (B, Lq, H, D) queries.
        k, v: (B, Lk, H, D) keys and values.
        key_padding_mask: optional (B, Lk) bool, True where a key may be attended to.
        rope: optional (cos, sin), each (B or 1, L, 1, D/2) float32 angles from `rope_frequencies`, applied to q and k
            (interleaved pairs, as Wan does); requires Lq == Lk.
        backend: a registered backend name; defaults to `active_backend_name()`.

    Returns:
        (B, Lq, H, D) in the dtype of q.
    """
    name = backend or active_backend_name()
    impl = get_backend(name)
    reason = impl.unsupported_reason(q, k, key_padding_mask)
    if reason is not None:
        raise ValueError(
            f"attention backend {name!r} cannot run {reason}; choose another with --attention or "
            f"{ENV_VAR} (available: {available_backends()})"
        )
    if rope is not None and not impl.supports_rope:
        q, k = apply_rope(q, *rope), apply_rope(k, *rope)
        rope = None
    return impl.fn(q, k, v, key_padding_mask, rope)


def _sdpa_mask(key_padding_mask: Tensor | None) -> Tensor | None:
    return None if key_padding_mask is None else key_padding_mask[:, None, None, :]  # (B, 1, 1, Lk)


def _sdpa(q: Tensor, k: Tensor, v: Tensor, key_padding_mask: Tensor | None, rope: None) -> Tensor:
    out = F.scaled_dot_product_attention(
        q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), attn_mask=_sdpa_mask(key_padding_mask)
    )  # (B, H, Lq, D)
    return out.transpose(1, 2)


def _sdpa_with(kernel: torch.nn.attention.SDPBackend) -> AttentionFn:
    def run(q: Tensor, k: Tensor, v: Tensor, key_padding_mask: Tensor | None, rope: None) -> Tensor:
        with torch.nn.attention.sdpa_kernel(kernel):
            return _sdpa(q, k, v, key_padding_mask, rope)

    return run


def _flash_attn(q: Tensor, k: Tensor, v: Tensor, key_padding_mask: None, rope: None) -> Tensor:
    from flash_attn import flash_attn_func

    return flash_attn_func(q, k, v)


def _xformers(q: Tensor, k: Tensor, v: Tensor, key_padding_mask: Tensor | None, rope: None) -> Tensor:
    import xformers.ops as xops

    bias = None
    if key_padding_mask is not None:
        batch, lq, heads, lk = q.shape[0], q.shape[1], q.shape[2], k.shape[1]
        # xformers wants a (B, H, Lq, Lk) additive bias whose last dim is 8-aligned in memory.
        padded = (lk + 7) // 8 * 8
        bias = q.new_zeros(batch, heads, lq, padded)[..., :lk]
        bias.masked_fill_(~key_padding_mask[:, None, None, :], float("-inf"))
    return xops.memory_efficient_attention(q, k, v, attn_bias=bias)


def _register_builtin_backends() -> None:
    register_backend(
        AttentionBackend("sdpa", _sdpa, description="torch scaled_dot_product_attention (reference)")
    )
    cuda_only = frozenset({"cuda"})
    half = frozenset({torch.float16, torch.bfloat16})
    SDPBackend = torch.nn.attention.SDPBackend
    register_backend(
        AttentionBackend(
            "sdpa_flash",
            _sdpa_with(SDPBackend.FLASH_ATTENTION),
            devices=cuda_only,
            dtypes=half,
            max_head_dim=256,
            head_dim_multiple=8,
            supports_key_padding_mask=False,
            description="sdpa forced to its FlashAttention-2 kernel",
        )
    )
    register_backend(
        AttentionBackend(
            "sdpa_cudnn",
            _sdpa_with(SDPBackend.CUDNN_ATTENTION),
            devices=cuda_only,
            dtypes=half,
            max_head_dim=128,
            head_dim_multiple=8,
            supports_key_padding_mask=False,
            description="sdpa forced to its cuDNN kernel",
        )
    )
    register_backend(
        AttentionBackend(
            "sdpa_efficient",
            _sdpa_with(SDPBackend.EFFICIENT_ATTENTION),
            devices=cuda_only,
            description="sdpa forced to its memory-efficient kernel",
        )
    )
    if importlib.util.find_spec("flash_attn") is not None:
        register_backend(
            AttentionBackend(
                "flash_attn",
                _flash_attn,
                devices=cuda_only,
                dtypes=half,
                max_head_dim=256,
                head_dim_multiple=8,
                supports_key_padding_mask=False,
                description="flash-attention package",
            )
        )
    if importlib.util.find_spec("xformers") is not None:
        register_backend(
            AttentionBackend(
                "xformers",
                _xformers,
                devices=cuda_only,
                max_head_dim=256,
                head_dim_multiple=8,
                description="xformers memory_efficient_attention",
            )
        )
    if importlib.util.find_spec("omni_kernels") is not None:
        # The Triton backend lives with its kernels; importing it registers it. Missing triton is not an error.
        with contextlib.suppress(ImportError):
            importlib.import_module("omni_kernels.attention_backend")


_register_builtin_backends()
