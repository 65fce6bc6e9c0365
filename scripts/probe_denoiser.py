"""Probe a trained transformer on encoded training data: how well it denoises at each noise level, and how
much it reads the caption.

For a batch of shard samples (video stream only, every frame noised), at several sigmas: the error of the
one-step prediction x0 = x_t - sigma * v, divided by the variance of the clean latents (1.0 or more means
no better than a constant), and the same with each sample given another sample's caption (the gap is what
the caption is worth at that noise level). Then the caption sensitivity at sigma = 1: the mean squared
change of the prediction under another caption, relative to the prediction's variance. A model that draws
what the caption says needs both: a low error near sigma = 1 and a sensitivity well above zero.

For toy-world captions ("... in a grey room ..."), a reference for sigma = 1: the error of predicting each
held-out clip's latents by the mean latents of the training clips with its room colour, what a model that
read only the room from the caption could reach.

    python scripts/probe_denoiser.py checkpoints/toy-run/export --shards data/toy-shards
"""

from __future__ import annotations

import argparse
import re
from collections import defaultdict

import torch

from omni.data.shards import LatentShards
from omni.models.transformer import LatentStream
from omni.pipelines.pipeline_omni import OmniPipeline

SIGMAS = (1.0, 0.97, 0.9, 0.8, 0.6, 0.3)


def room_colour_bound(data: LatentShards, fit: int = 500, held_out: int = 100) -> float | None:
    """Relative x0 error at sigma 1 of the per-room-colour mean latents (None if captions name no room)."""
    count = min(fit + held_out, len(data))
    rooms = [re.search(r"(\w+) room", data.record(i)["caption"]) for i in range(count)]
    if count <= fit or not all(rooms):
        return None
    x0 = data.load(list(range(count))).video.float()
    groups = defaultdict(list)
    for i in range(fit):
        groups[rooms[i].group(1)].append(i)
    means = {room: x0[idx].mean(0) for room, idx in groups.items()}
    overall = x0[:fit].mean(0)
    errors = [(x0[i] - means.get(rooms[i].group(1), overall)).square().mean() for i in range(fit, count)]
    return float(torch.stack(errors).mean() / x0[fit:].var())


@torch.no_grad()
def main(model: str, shards: str, samples: int, seed: int) -> None:
    if samples < 2:
        raise SystemExit(
            f"--samples must be at least 2 (captions are swapped between samples), got {samples}"
        )
    transformer = OmniPipeline.from_pretrained(model).transformer.eval()
    data = LatentShards(shards)
    batch = data.load(list(range(min(samples, len(data)))))
    x0, text, mask = batch.video.float(), batch.text.float(), batch.text_mask
    other_text, other_mask = text.roll(1, 0), mask.roll(1, 0)  # each sample gets its neighbour's caption
    generator = torch.Generator().manual_seed(seed)

    def velocity(
        xt: torch.Tensor, sigma: float, states: torch.Tensor, states_mask: torch.Tensor
    ) -> torch.Tensor:
        t = torch.full(xt.shape[:1] + xt.shape[2:3], sigma * 1000)
        stream = LatentStream("video", xt, t, 0.0, batch.video_frame_seconds, None, None)
        return transformer([stream], states, states_mask)[0].float()

    print(f"{len(x0)} samples of {shards}; clean latent variance {x0.var():.3f}")
    print(f"{'sigma':>6}  {'x0 error':>8}  {'/ variance':>10}  {'with another caption':>20}")
    for sigma in SIGMAS:
        noise = torch.randn(x0.shape, generator=generator)
        xt = (1 - sigma) * x0 + sigma * noise
        error, swapped = (
            (xt - sigma * velocity(xt, sigma, states, states_mask) - x0).square().mean()
            for states, states_mask in ((text, mask), (other_text, other_mask))
        )
        print(f"{sigma:6.2f}  {error:8.3f}  {error / x0.var():10.3f}  {swapped / x0.var():20.3f}")
    noise = torch.randn(x0.shape, generator=generator)
    own = velocity(noise, 1.0, text, mask)
    other = velocity(noise, 1.0, other_text, other_mask)
    print(f"caption sensitivity at sigma 1: {(own - other).square().mean() / own.var():.3f}")
    bound = room_colour_bound(data)
    if bound is not None:
        print(f"reference at sigma 1, the room colour's mean latents: {bound:.3f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", help="pipeline folder (e.g. the trainer's export)")
    parser.add_argument("--shards", default="data/toy-shards", help="latent shards the model was trained on")
    parser.add_argument("--samples", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    main(args.model, args.shards, args.samples, args.seed)
