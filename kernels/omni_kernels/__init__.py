"""omni's Triton kernels: fused flash attention (forward and backward, masks, lengths, RoPE) and fused norms.

Importing `omni_kernels.attention_backend` registers the attention kernels as the `triton` backend of
`omni.ops.attention` (omni does that itself when this package is installed). Set `TRITON_INTERPRET=1` before
importing to run the kernels on CPU tensors.

The names below load their module on first use, so the package (and `omni_kernels.bench`, which the `omni`
CLI mounts) imports without triton; using a kernel then raises the ImportError.
"""

from importlib import import_module

_EXPORTS = {
    "INTERPRET": "omni_kernels._triton",
    "MAX_HEAD_DIM": "omni_kernels.attention",
    "flash_attention": "omni_kernels.attention",
    "gated_residual": "omni_kernels.norms",
    "layer_norm_modulate": "omni_kernels.norms",
    "rms_norm_rope": "omni_kernels.norms",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'omni_kernels' has no attribute {name!r}")
