"""Attention dispatch and reference ops."""

from omni.ops.attention import (
    AttentionBackend,
    active_backend_name,
    attention,
    available_backends,
    get_backend,
    register_backend,
    use_attention_backend,
)
from omni.ops.rope import apply_rope, rope_axis_dims, rope_frequencies

__all__ = [
    "AttentionBackend",
    "active_backend_name",
    "apply_rope",
    "attention",
    "available_backends",
    "get_backend",
    "register_backend",
    "rope_axis_dims",
    "rope_frequencies",
    "use_attention_backend",
]
