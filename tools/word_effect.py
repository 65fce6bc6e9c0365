#!/usr/bin/env python
"""How much a toy-world model hears a caption's shape word, against its colour word, per noise level.

    .venv/bin/python tools/word_effect.py MODEL_FOLDER [--images 64] [--seed 0]

Renders images from the toy world, noises them to each sigma and asks the model for x_0 three times: with the
true caption, with the shape word swapped for another shape's ("ball" -> "square"), and with the colour word
swapped. Prints, per sigma, the x_0 error with the true caption, how much each swap raises it (what the word
is worth to the model) and how far each swap moves the prediction. A model that ignores the shape word shows
a shape swap that moves nothing; the colour word is the yardstick. No sampling: a few seconds a sigma.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import torch

from omni.conditioning.plan import REFERENCE_SECONDS
from omni.data.prepare import default_format
from omni.data.sources import build_source
from omni.data.stream import StreamedSamples
from omni.models.streams import LatentStream
from omni.pipelines.pipeline_omni import OmniPipeline

SIGMAS = (0.3, 0.5, 0.7, 0.8, 0.85, 0.9, 0.95, 0.99)
SHAPE_SWAP = {
    "ball": "square", "circle": "square", "disc": "box", "dot": "block",
    "square": "triangle", "box": "wedge", "block": "pyramid", "cube": "triangle",
    "triangle": "ball", "wedge": "circle", "pyramid": "disc",
}  # fmt: skip
COLOUR_SWAP = {
    "red": "cyan",
    "yellow": "blue",
    "green": "magenta",
    "cyan": "red",
    "blue": "yellow",
    "magenta": "green",
}


def swap_first(caption: str, table: dict[str, str]) -> str:
    """The caption with its first word found in `table` replaced (the first object's)."""
    return re.sub(r"\b(" + "|".join(table) + r")\b", lambda m: table[m.group(1)], caption, count=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", help="an OmniPipeline folder of the toy preset (e.g. omni/assets/toy)")
    parser.add_argument(
        "--images", type=int, default=64, help="toy-world images to average over (default 64)"
    )
    parser.add_argument("--seed", type=int, default=0, help="first scene and noise seed (default 0)")
    args = parser.parse_args()
    if args.images < 1:
        raise SystemExit(f"word_effect: --images must be a positive integer, got {args.images}")
    if not (Path(args.model) / "model_index.json").is_file():
        raise SystemExit(f"word_effect: {args.model} is not an OmniPipeline folder (no model_index.json)")

    pipe = OmniPipeline.from_pretrained(args.model)
    model = pipe.transformer.eval()
    stream = StreamedSamples("toyworld", pipe, default_format(pipe, frames=(1,)), pipe.config.max_text_tokens)
    first = 500_000_000 + args.seed * args.images  # far from training streams and evaluation suites
    captions = [
        clip.load().caption for clip in build_source("toyworld", stream.format, count=args.images, seed=first)
    ]
    batch = stream.load(args.images, first)
    x0 = batch.video[:, :, :1]
    texts = {
        "true": (batch.text, batch.text_mask),
        "shape": stream.encoder.text([swap_first(c, SHAPE_SWAP) for c in captions]),
        "colour": stream.encoder.text([swap_first(c, COLOUR_SWAP) for c in captions]),
    }
    generator = torch.Generator().manual_seed(args.seed)
    print(f"{args.model}: {args.images} images; x_0 mean squared error in latent units")
    print("sigma  error  +shape swap  +colour swap  moved by shape  moved by colour")
    for sigma in SIGMAS:
        noise = torch.randn(x0.shape, generator=generator)
        xt = (1 - sigma) * x0 + sigma * noise
        noisy = LatentStream(
            "image",
            xt,
            torch.full((len(xt),), sigma * 1000),
            start_seconds=REFERENCE_SECONDS,
            frame_seconds=1.0,
        )
        with torch.no_grad():
            estimate = {name: xt - sigma * model([noisy], *text)[0] for name, text in texts.items()}
        error = {name: float((e - x0).square().mean()) for name, e in estimate.items()}
        moved = {
            name: float((estimate[name] - estimate["true"]).square().mean()) for name in ("shape", "colour")
        }
        print(
            f"{sigma:5.2f}  {error['true']:.4f}  {error['shape'] - error['true']:+.6f}  "
            f"{error['colour'] - error['true']:+.6f}  {moved['shape']:.6f}  {moved['colour']:.6f}"
        )


if __name__ == "__main__":
    main()
