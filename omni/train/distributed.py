"""Process groups for `torchrun` (NCCL on GPUs, gloo on CPUs), or a single process when launched plainly."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistInfo:
    """Where this process sits: data-parallel rank over batches, sequence-parallel group over tokens."""

    rank: int
    world_size: int
    device: torch.device
    sequence_parallel: int
    sp_group: object | None  # the ranks sharing one batch's tokens
    mesh: object | None  # 1-D device mesh over all ranks, for FSDP

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def dp_rank(self) -> int:
        return self.rank // self.sequence_parallel

    @property
    def dp_size(self) -> int:
        return self.world_size // self.sequence_parallel

    def barrier(self) -> None:
        if self.world_size > 1:
            dist.barrier()


def init_distributed(sequence_parallel: int = 1, device: str | None = None) -> DistInfo:
    """Initialise from torchrun's environment (RANK, WORLD_SIZE, LOCAL_RANK), or run as one process."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if device is None:
        device = f"cuda:{local_rank}" if torch.cuda.is_available() else "cpu"
    torch_device = torch.device(device)
    if torch_device.type == "cuda":
        torch.cuda.set_device(torch_device)
    if world_size % sequence_parallel:
        raise ValueError(
            f"sequence_parallel={sequence_parallel} must divide the number of processes ({world_size})"
        )
    if world_size == 1:
        if sequence_parallel != 1:
            raise ValueError(
                f"sequence_parallel={sequence_parallel} needs that many processes; launch with torchrun"
            )
        return DistInfo(0, 1, torch_device, 1, None, None)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if torch_device.type == "cuda" else "gloo")
    from torch.distributed.device_mesh import init_device_mesh

    mesh = init_device_mesh(torch_device.type, (world_size,))
    sp_group = None
    if sequence_parallel > 1:
        for start in range(0, world_size, sequence_parallel):  # every rank must create every group
            group = dist.new_group(list(range(start, start + sequence_parallel)))
            if start <= rank < start + sequence_parallel:
                sp_group = group
    return DistInfo(rank, world_size, torch_device, sequence_parallel, sp_group, mesh)


def shutdown() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()
