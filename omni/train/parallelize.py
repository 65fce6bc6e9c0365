"""Apply parallelism to a single-device OmniTransformer from outside, in torchtitan's order:
sequence parallel -> activation checkpointing -> compile -> FSDP2 (`fully_shard` per block, then the root)."""

from __future__ import annotations

import torch
from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard

from omni.models.transformer import OmniTransformer
from omni.train.config import ParallelSection
from omni.train.distributed import DistInfo
from omni.train.sequence_parallel import apply_sequence_parallel


def parallelize(model: OmniTransformer, config: ParallelSection, dist_info: DistInfo) -> OmniTransformer:
    """Return `model` (changed in place) ready for training on `dist_info`'s processes."""
    if config.sequence_parallel != dist_info.sequence_parallel:
        raise ValueError(
            f"parallel.sequence_parallel={config.sequence_parallel} but the processes were set up for "
            f"{dist_info.sequence_parallel}"
        )
    if config.sequence_parallel > 1:
        apply_sequence_parallel(model, dist_info.sp_group)
    if config.activation_checkpointing:
        model.enable_gradient_checkpointing()
    if config.compile:
        for block in model.blocks:
            block.compile(dynamic=False)
    if dist_info.world_size > 1:
        if not config.fsdp:
            raise ValueError(
                "several processes need parallel.fsdp: true (omni shards and reduces with FSDP2)"
            )
        low = torch.bfloat16 if config.mixed_precision == "bf16" else None
        mixed = MixedPrecisionPolicy(param_dtype=low, reduce_dtype=torch.float32)
        full = MixedPrecisionPolicy(param_dtype=torch.float32, reduce_dtype=torch.float32)
        for block in model.blocks:
            fully_shard(block, mesh=dist_info.mesh, mp_policy=mixed)
        for io in model.experts.values():  # the time embedding (and pooled text added to it) stays in fp32
            fp32 = [io.time_embedder, io.time_proj] + ([io.text_pool] if hasattr(io, "text_pool") else [])
            fully_shard(fp32, mesh=dist_info.mesh, mp_policy=full)
        fully_shard(model, mesh=dist_info.mesh, mp_policy=mixed, reshard_after_forward=False)
    return model
