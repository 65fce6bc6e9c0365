"""omni's Triton kernels: fused flash attention (forward and backward, masks, lengths, RoPE) and fused norms.

Importing `omni_kernels.attention_backend` registers the attention kernels as the `triton` backend of
`omni.ops.attention` (omni does that itself when this package is installed). Set `TRITON_INTERPRET=1` before
importing to run the kernels on CPU tensors.
"""

from omni_kernels._triton import INTERPRET
from omni_kernels.attention import MAX_HEAD_DIM, flash_attention
from omni_kernels.norms import gated_residual, layer_norm_modulate, rms_norm_rope

__all__ = [
    "INTERPRET",
    "MAX_HEAD_DIM",
    "flash_attention",
    "gated_residual",
    "layer_norm_modulate",
    "rms_norm_rope",
]
