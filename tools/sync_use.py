#!/usr/bin/env python
"""How much a toy-world model times its sound by the picture, per noise level.

    .venv/bin/python tools/sync_use.py MODEL_FOLDER [--clips 8] [--seed 0]

Renders toy-world clips, noises their sound to each sigma and asks the model for the sound's x_0 four ways,
the picture always given clean (video-to-audio): with the picture at its true time, the same picture placed
one latent frame (125 ms on the toy preset) later and earlier on the clip clock, and no picture at all.
Prints, per sigma, the sound's x_0 error and how much moving the picture in time raises it, next to how
much the picture lowers it at all. A model that times its beeps by the bounces it sees shows a clear rise
when the picture moves, also at sigma 1 (pure noise, where a sampler starts and nothing but the picture can
say when to beep); one that takes only "there is a red ball, it beeps" from it shows none there, and puts
its beeps anywhere. At lower sigmas the noised sound itself shows its beeps, and a rise there may only mean
that the model checks them against the picture. No sampling: about a minute on one core.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from omni.data.prepare import default_format
from omni.data.stream import StreamedSamples
from omni.models.streams import LatentStream
from omni.pipelines.pipeline_omni import OmniPipeline

# 1.0 is the sampler's first step (pure noise): where the sound's beeps are placed, the picture must place them
SIGMAS = (0.5, 0.8, 0.9, 0.95, 0.99, 1.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", help="an OmniPipeline folder of the toy preset (e.g. omni/assets/toy)")
    parser.add_argument("--clips", type=int, default=8, help="toy-world clips to average over (default 8)")
    parser.add_argument("--seed", type=int, default=0, help="first scene and noise seed (default 0)")
    args = parser.parse_args()
    if args.clips < 1:
        raise SystemExit(f"sync_use: --clips must be a positive integer, got {args.clips}")
    if not (Path(args.model) / "model_index.json").is_file():
        raise SystemExit(f"sync_use: {args.model} is not an OmniPipeline folder (no model_index.json)")

    pipe = OmniPipeline.from_pretrained(args.model)
    model = pipe.transformer.eval()
    if not model.has_audio_expert:
        raise SystemExit(f"sync_use: {args.model} has no audio expert")
    stream = StreamedSamples("toyworld", pipe, default_format(pipe), pipe.config.max_text_tokens)
    batch = stream.load(args.clips, 600_000_000 + args.seed * args.clips)  # far from training and suites
    video, audio0, text = batch.video, batch.audio, (batch.text, batch.text_mask)
    n, width = video.shape[0], batch.video_frame_seconds * model.config.patch_size[0]
    generator = torch.Generator().manual_seed(args.seed)

    def estimate(noisy: torch.Tensor, sigma: float, picture_at: float | None) -> torch.Tensor:
        sound = LatentStream(
            "audio", noisy, torch.full((n,), sigma * 1000), frame_seconds=batch.audio_frame_seconds
        )
        streams = [sound]
        if picture_at is not None:
            clean = torch.zeros(n, video.shape[2])
            picture = LatentStream(
                "video", video, clean, start_seconds=picture_at, frame_seconds=batch.video_frame_seconds
            )
            streams = [picture, sound]
        with torch.no_grad():
            velocity = model(streams, *text)[-1]
        return noisy - sigma * velocity

    print(f"{args.model}: {args.clips} clips; x_0 mean squared error of the sound, the picture given clean")
    print("                          moving the picture in time raises it by    the picture")
    print(
        f"sigma  picture on time   {width * 1000:.0f} ms later   {width * 1000:.0f} ms earlier    lowers it by"
    )
    for sigma in SIGMAS:
        noisy = (1 - sigma) * audio0 + sigma * torch.randn(audio0.shape, generator=generator)

        error = {
            at: float((estimate(noisy, sigma, at) - audio0).square().mean())
            for at in (0.0, width, -width, None)
        }
        base = error[0.0]
        print(
            f"{sigma:5.2f}  {base:15.4f}  {error[width] / base - 1:13.1%}  {error[-width] / base - 1:14.1%}  "
            f"{1 - base / error[None]:14.1%}"
        )


if __name__ == "__main__":
    main()
