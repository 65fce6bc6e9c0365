"""Ulysses sequence parallelism for OmniTransformer, applied from outside the model.

The tokens of every expert are split into equal contiguous shards over the ranks of a process group (padded
to a multiple of the group size; padding is masked out of attention). Each block runs its per-token work on
its shard; the joint self-attention swaps sequence for heads with one all_to_all, attends over the whole
sequence with H / P heads, and swaps back. Forward hooks shard the block inputs before the first block and
gather the tokens after the last, so the model code stays single-device.

Not diffusers' `ContextParallelConfig` (Ulysses through `enable_parallelism`): it runs inside
`dispatch_attention_fn`, which omni's attention (its own registry and fused RoPE, see `omni.ops.attention`)
does not call, and its plan splits whole module inputs, where omni shards each expert's token stream.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
import torch.distributed.nn.functional as dist_fn
from torch import Tensor

from omni.ops.attention import attention
from omni.ops.rope import apply_rope


def _all_to_all(x: Tensor, group) -> Tensor:
    """Exchange equal chunks of dim 0 with every rank (chunk p goes to rank p), with autograd."""
    x = x.contiguous()
    return dist_fn.all_to_all_single(torch.empty_like(x), x, group=group)


def sequence_to_heads(x: Tensor, group) -> Tensor:
    """(B, L/P, H, D) local tokens, all heads -> (B, L, H/P, D) all tokens (rank-major order), local heads."""
    size = dist.get_world_size(group)
    batch, length, heads, dim = x.shape
    chunks = x.view(batch, length, size, heads // size, dim).permute(2, 0, 1, 3, 4)  # (P, B, L/P, H/P, D)
    received = _all_to_all(chunks, group)  # chunk p: rank p's tokens, my heads
    return received.permute(1, 0, 2, 3, 4).reshape(batch, size * length, heads // size, dim)


def heads_to_sequence(x: Tensor, group) -> Tensor:
    """Inverse of `sequence_to_heads`."""
    size = dist.get_world_size(group)
    batch, length, heads, dim = x.shape
    chunks = x.view(batch, size, length // size, heads, dim).permute(1, 0, 2, 3, 4)  # (P, B, L/P, H/P, D)
    received = _all_to_all(chunks, group)  # chunk p: my tokens, rank p's heads
    return received.permute(1, 2, 0, 3, 4).reshape(batch, length // size, size * heads, dim)


class UlyssesAttention:
    """Joint self-attention over sequence-sharded q, k, v; `key_padding_mask` is given for the whole sequence
    in rank-major order (what `sequence_to_heads` produces)."""

    def __init__(self, group):
        self.group = group

    def __call__(self, q: Tensor, k: Tensor, v: Tensor, *, key_padding_mask=None, rope=None) -> Tensor:
        if rope is not None:  # rotate locally, where the positions are known
            q, k = apply_rope(q, *rope), apply_rope(k, *rope)
        q, k, v = (sequence_to_heads(x, self.group) for x in (q, k, v))
        out = attention(q, k, v, key_padding_mask=key_padding_mask)
        return heads_to_sequence(out, self.group)


class SequenceSharder:
    """Forward hooks that shard the inputs of the first block and gather the outputs of the last one."""

    def __init__(self, group):
        self.group = group
        self.rank = dist.get_rank(group)
        self.size = dist.get_world_size(group)
        self._local = None  # block arguments for this rank, computed once per forward

    def _shard_bounds(self, length: int) -> tuple[int, int, int]:
        per_rank = -(-length // self.size)
        return per_rank, self.rank * per_rank, (self.rank + 1) * per_rank

    def shard_inputs(
        self, hidden, experts, modulation, rope, text, text_mask, key_padding_mask, grids=None, bins=None
    ):
        """The blocks' inputs for this rank's share of the tokens. `grids` and `bins` (token_conv, av_bridge)
        are None: sequence parallelism refuses models that have them."""
        batch = hidden[0].shape[0]
        device = hidden[0].device
        lengths = [x.shape[1] for x in hidden]
        local_hidden, local_mod, local_rope, masks_by_rank = [], [], [], [[] for _ in range(self.size)]
        full_mask = key_padding_mask
        if full_mask is None:
            full_mask = torch.ones(batch, sum(lengths), dtype=torch.bool, device=device)
        offset = 0
        for x, mod, length in zip(hidden, modulation, lengths):
            per_rank, start, end = self._shard_bounds(length)
            padded = per_rank * self.size
            index = torch.arange(padded, device=device).clamp(
                max=length - 1
            )  # padding repeats the last token
            valid = torch.arange(padded, device=device) < length
            local = index[start:end]
            local_hidden.append(x.index_select(1, local))
            group_size = length // mod.shape[1]
            local_mod.append(mod.index_select(1, local // group_size))  # one modulation row per local token
            local_rope.append(tuple(r.index_select(1, offset + local) for r in rope))
            mask = full_mask[:, offset : offset + length].index_select(1, index) & valid
            for r in range(self.size):
                masks_by_rank[r].append(mask[:, r * per_rank : (r + 1) * per_rank])
            offset += length
        gathered_mask = torch.cat([m for rank_masks in masks_by_rank for m in rank_masks], dim=1)
        rope_local = tuple(torch.cat([r[i] for r in local_rope], dim=1) for i in range(2))
        self._lengths = lengths
        return local_hidden, experts, local_mod, rope_local, text, text_mask, gathered_mask, grids, bins

    def gather_outputs(self, hidden: list[Tensor]) -> list[Tensor]:
        full = []
        for x, length in zip(hidden, self._lengths):
            parts = dist_fn.all_gather(x.contiguous(), group=self.group)
            full.append(torch.cat(parts, dim=1)[:, :length])
        return full

    def attach(self, blocks) -> None:
        first, last = blocks[0], blocks[-1]

        def before_first(module, args):
            self._local = self.shard_inputs(*args)
            return self._local

        def before_other(module, args):
            return (args[0], *self._local[1:])

        first.register_forward_pre_hook(before_first)
        for block in blocks[1:]:
            block.register_forward_pre_hook(before_other)
        last.register_forward_hook(lambda module, args, output: self.gather_outputs(output))
        ulysses = UlyssesAttention(self.group)
        for block in blocks:
            block.joint_attention = ulysses


def apply_sequence_parallel(model, group) -> None:
    """Shard every block's tokens over `group` (Ulysses); the heads must divide by the group size."""
    if getattr(model.config, "token_conv", 0):
        raise ValueError(
            f"sequence parallelism cannot run a model with token_conv={model.config.token_conv}: its "
            "convolution needs each token's neighbours, which other ranks hold; train it without "
            "sequence_parallel"
        )
    if getattr(model.config, "av_bridge", False):
        raise ValueError(
            "sequence parallelism cannot run a model with av_bridge: its time-window means need every "
            "video and audio token, which other ranks hold; train it without sequence_parallel"
        )
    size = dist.get_world_size(group)
    heads = model.config.num_attention_heads
    if heads % size:
        raise ValueError(f"sequence_parallel={size} must divide the number of attention heads ({heads})")
    SequenceSharder(group).attach(model.blocks)
