"""Checks run under `torchrun --nproc_per_node 2` (gloo on the CPU); results go to a JSON file for the tests.

Each check compares a distributed computation with the same computation on one process.
"""

from __future__ import annotations

import json
import sys

import torch
import torch.distributed as dist

from omni import LatentStream, OmniTransformer
from omni.ops import attention, rope_frequencies
from omni.train.config import ParallelSection
from omni.train.distributed import init_distributed
from omni.train.parallelize import parallelize
from omni.train.sequence_parallel import UlyssesAttention
from tests.helpers import TINY_TRANSFORMER, randomize


def max_error(a, b) -> float:
    return float((a.detach().float() - b.detach().float()).abs().max())


def check_ulysses_attention(rank, size) -> dict:
    """Sequence-sharded attention with all_to_all equals plain attention, forward and backward."""
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(2, 24, 4, 8, generator=g, requires_grad=True) for _ in range(3))
    mask = torch.rand(2, 24, generator=g) > 0.25
    cos, sin = rope_frequencies(torch.rand(24, 3, generator=g).double() * 5, 8)
    rope = (cos[None, :, None], sin[None, :, None])
    reference = attention(q, k, v, key_padding_mask=mask, rope=rope)
    reference.square().sum().backward()
    local = slice(rank * 12, (rank + 1) * 12)
    lq, lk, lv = (x.detach()[:, local].clone().requires_grad_() for x in (q, k, v))
    # The mask for the gathered sequence: rank-major order, which for one stream is the original order.
    out = UlyssesAttention(dist.group.WORLD)(
        lq, lk, lv, key_padding_mask=mask, rope=(rope[0][:, local], rope[1][:, local])
    )
    out.square().sum().backward()
    return {
        "forward": max_error(out, reference[:, local]),
        "grad_q": max_error(lq.grad, q.grad[:, local]),
        "grad_k": max_error(lk.grad, k.grad[:, local]),
        "grad_v": max_error(lv.grad, v.grad[:, local]),
    }


def model_and_inputs():
    torch.manual_seed(0)
    model = randomize(OmniTransformer(**TINY_TRANSFORMER))
    g = torch.Generator().manual_seed(1)
    video = torch.randn(2, 4, 3, 4, 6, generator=g)  # 18 tokens: not a multiple of 2x the frame size
    audio = torch.randn(2, 2, 7, 4, generator=g)  # 7 tokens: padded to 8 over 2 ranks
    t_video = torch.tensor([[0.0, 400.0, 400.0], [0.0, 900.0, 900.0]])
    streams = [
        LatentStream("video", video, t_video),
        LatentStream(
            "audio",
            audio,
            torch.tensor([400.0, 900.0]),
            frame_seconds=0.04,
            token_mask=torch.tensor([[True] * 5 + [False] * 2, [True] * 7]),
        ),
    ]
    text = torch.randn(2, 5, 16, generator=g)
    return model, streams, text


def loss_of(outputs) -> torch.Tensor:
    return sum(o.square().mean() for o in outputs)


def check_sequence_parallel_model(info) -> dict:
    """The model with Ulysses over 2 ranks equals the single-process model (outputs and gradients)."""
    reference, streams, text = model_and_inputs()
    loss_of(reference(streams, text)).backward()
    model, _, _ = model_and_inputs()
    parallelize(model, ParallelSection(sequence_parallel=info.sequence_parallel, fsdp=True), info)
    outputs = model(streams, text)
    loss_of(outputs).backward()
    expected = reference(streams, text)
    grads = {n: p.grad for n, p in reference.named_parameters()}
    grad_error = 0.0
    for name, param in model.named_parameters():
        if grads[name] is None:  # unused by these streams (the image embedding)
            continue
        grad = param.grad.full_tensor() if hasattr(param.grad, "full_tensor") else param.grad
        grad_error = max(grad_error, max_error(grad, grads[name]))
    return {"forward": max(max_error(a, b) for a, b in zip(outputs, expected)), "grads": grad_error}


def check_fsdp_step(info) -> dict:
    """One SGD step with FSDP2 over 2 ranks (half the batch each) equals one step on one process
    (plain SGD, so a wrongly scaled gradient reduction would show; Adam would hide it)."""
    reference, streams, text = model_and_inputs()
    optimizer = torch.optim.SGD(reference.parameters(), lr=0.1)
    loss_of(reference(streams, text)).backward()
    optimizer.step()

    model, _, _ = model_and_inputs()
    parallelize(model, ParallelSection(fsdp=True), info)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    mine = [
        LatentStream(
            s.modality,
            s.latents[info.rank : info.rank + 1],
            s.timesteps[info.rank : info.rank + 1],
            s.start_seconds,
            s.frame_seconds,
            None if s.token_mask is None else s.token_mask[info.rank : info.rank + 1],
        )
        for s in streams
    ]
    loss_of(model(mine, text[info.rank : info.rank + 1])).backward()
    optimizer.step()
    expected = dict(reference.named_parameters())
    error = max(max_error(p.full_tensor(), expected[n]) for n, p in model.named_parameters())
    return {"params_after_step": error}


def main(out_path: str) -> None:
    results = {}
    plain = init_distributed(1)
    results["ulysses_attention"] = check_ulysses_attention(plain.rank, plain.world_size)
    results["fsdp_step"] = check_fsdp_step(plain)
    sp = init_distributed(2)
    results["sequence_parallel_model"] = check_sequence_parallel_model(sp)
    if plain.rank == 0:
        with open(out_path, "w") as f:
            json.dump(results, f)
    dist.barrier()
    dist.destroy_process_group()


if __name__ == "__main__":
    main(sys.argv[1])
