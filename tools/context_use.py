#!/usr/bin/env python
"""How much a toy-world model uses the rest of a clip to denoise a frame, per noise level.

    .venv/bin/python tools/context_use.py MODEL_FOLDER [--clips 8] [--seed 0]

Renders toy-world clips, noises them to each sigma and asks the model for x_0 of every latent frame three ways:
the whole clip noised (text-to-video), the same with the first latent frame given clean (image-to-video), and
each latent frame on its own (a one-frame clip with the same noise). Prints, per sigma, the x_0 error of the
later frames and how much a clean first frame (to the next frame, and to all later ones) and the other noisy
frames lower it. A model that passes nothing between frames shows 0% everywhere: it decides each frame on
its own, so its clips flicker and an image-to-video clip forgets its key frame after the
first frame. No sampling: under a minute on one core.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from omni.data.prepare import default_format
from omni.data.stream import StreamedSamples
from omni.models.streams import LatentStream
from omni.pipelines.pipeline_omni import OmniPipeline

SIGMAS = (0.5, 0.8, 0.9, 0.95, 0.99)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", help="an OmniPipeline folder of the toy preset (e.g. omni/assets/toy)")
    parser.add_argument("--clips", type=int, default=8, help="toy-world clips to average over (default 8)")
    parser.add_argument("--seed", type=int, default=0, help="first scene and noise seed (default 0)")
    args = parser.parse_args()
    if args.clips < 1:
        raise SystemExit(f"context_use: --clips must be a positive integer, got {args.clips}")
    if not (Path(args.model) / "model_index.json").is_file():
        raise SystemExit(f"context_use: {args.model} is not an OmniPipeline folder (no model_index.json)")

    pipe = OmniPipeline.from_pretrained(args.model)
    model = pipe.transformer.eval()
    stream = StreamedSamples("toyworld", pipe, default_format(pipe), pipe.config.max_text_tokens)
    batch = stream.load(args.clips, 600_000_000 + args.seed * args.clips)  # far from training and suites
    x0, text = batch.video, (batch.text, batch.text_mask)
    n, frames, seconds = x0.shape[0], x0.shape[2], batch.video_frame_seconds
    generator = torch.Generator().manual_seed(args.seed)

    def estimate(latents: torch.Tensor, timesteps: torch.Tensor, start: int = 0) -> torch.Tensor:
        clip = LatentStream("video", latents, timesteps, start_seconds=start * seconds, frame_seconds=seconds)
        with torch.no_grad():
            velocity = model([clip], *text)[0]
        return latents - clip.noise_levels(tuple(model.config.patch_size)) * velocity

    print(f"{args.model}: {args.clips} clips of {frames} latent frames; x_0 mean squared error of frames 1..")
    print("                   a clean first frame helps")
    print("sigma  whole clip  the next frame  all later frames  the other frames help")
    for sigma in SIGMAS:
        xt = (1 - sigma) * x0 + sigma * torch.randn(x0.shape, generator=generator)
        noisy = torch.full((n, frames), sigma * 1000)
        whole = estimate(xt, noisy)
        keyed_latents, keyed_t = xt.clone(), noisy.clone()
        keyed_latents[:, :, 0], keyed_t[:, 0] = x0[:, :, 0], 0.0
        keyed = estimate(keyed_latents, keyed_t)
        alone = torch.cat([estimate(xt[:, :, f : f + 1], noisy[:, :1], f) for f in range(frames)], dim=2)

        def error(x: torch.Tensor, last: int | None = None) -> float:
            return float((x - x0)[:, :, 1:last].square().mean())

        base = error(whole)
        print(
            f"{sigma:5.2f}  {base:10.4f}  {1 - error(keyed, 2) / error(whole, 2):17.1%}  "
            f"{1 - error(keyed) / base:16.1%}  {1 - base / error(alone):20.1%}"
        )


if __name__ == "__main__":
    main()
