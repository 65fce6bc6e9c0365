#!/usr/bin/env python
"""Whether a toy-world model hears the caption's motion word, per noise level.

    .venv/bin/python tools/motion_use.py MODEL_FOLDER [--clips 48] [--seed 0] [--lanes 0] [--sheet PNG]

Renders one-object toy-world clips that bounce left and right or up and down, noises their video to each
sigma and asks the model for the video's x_0 twice on the same noisy input: with the true caption, and with
its motion phrase swapped for the other axis's ("bouncing left and right" <-> "bouncing up and down"). It
follows the object's colour through each x_0 (omni.toyworld.probes) and prints, per sigma:

- how much the swap raises the x_0 error (what the word is worth to the model there);
- the word's pull: how much wider the colour's track spreads along the axis the caption names than across
  it, with the caption saying horizontal minus with it saying vertical, in pixels, averaged over clips. The
  true clips' own tracks spread about 31 px more along their axis than across it, so a model that draws
  each caption's motion as the true clips move pulls about twice that (62 px); a model deaf to the word 0.
- the word's extent: the same difference for where the colour lies over all frames at once (its standard
  deviation along each axis, each pixel weighed by its share of the object's colour against the room's, so
  the faint tint of an x_0 that averages over many places counts). It does not ask when: a model that hears
  the word but cannot tell one moment of the clip from another spreads the object along the named axis, and
  scores here but not in the pull.

At sigma 1 (the sampler's first step) the caption is all the model has, so a pull there is the word deciding
the layout; below about 0.9 the noisy video shows the path and the word has little left to add. `--lanes`
draws that share of scenes in lanes (the toy world's option of the same name), whose bounces cross the
arena's middle from a set start, where the word alone says where the object is at every moment. No
sampling: a minute or two on one core. `--sheet` writes a picture of the first clip at sigma 1, eight frames
from its start to its end in each row: the true clip, x_0 with its caption, x_0 with the swapped caption.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from omni.data.prepare import default_format
from omni.data.sources import build_source
from omni.data.stream import StreamedSamples
from omni.media.image import write_png
from omni.models.streams import LatentStream
from omni.pipelines.pipeline_omni import OmniPipeline
from omni.toyworld.captions import MOTION_PHRASES
from omni.toyworld.probes import colour_centroids, colour_extent, object_colour, room_colour

SIGMAS = (0.8, 0.9, 0.95, 0.99, 1.0)
SWAP = {"horizontal": "vertical", "vertical": "horizontal"}


def motion_of(caption: str) -> tuple[str, str] | None:
    """(motion, phrase) of a caption that bounces left and right or up and down, else None."""
    for motion in SWAP:
        for phrase in MOTION_PHRASES[motion]:
            if phrase in caption:
                return motion, phrase
    return None


def swapped(caption: str, motion: str, phrase: str) -> str:
    """The caption with its motion phrase replaced by the other axis's phrase of the same index."""
    index = MOTION_PHRASES[motion].index(phrase)
    return caption.replace(phrase, MOTION_PHRASES[SWAP[motion]][index], 1)


def axis_spread(centroids: np.ndarray) -> float:
    """How much wider a track spreads along x than along y (px): the span between its 10th and 90th
    percentiles on each axis, frames without the colour left out; NaN with fewer than 4 such frames."""
    found = centroids[~np.isnan(centroids).any(-1)]
    if len(found) < 4:
        return float("nan")
    span = np.percentile(found, 90, axis=0) - np.percentile(found, 10, axis=0)
    return float(span[0] - span[1])


def write_sheet(path: str, clips: list[np.ndarray]) -> None:
    """One row per (F, H, W, 3) uint8 clip, eight frames spread from its first to its last, x3 nearest."""
    frames = np.linspace(0, len(clips[0]) - 1, 8).round().astype(int)
    sheet = np.concatenate([np.concatenate(list(clip[frames]), axis=1) for clip in clips], axis=0)
    write_png(path, sheet.repeat(3, axis=0).repeat(3, axis=1))
    print(f"wrote {path}: rows are the true clip, x_0 at sigma 1 with its caption, with the swapped caption")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", help="an OmniPipeline folder of the toy preset (e.g. omni/assets/toy)")
    parser.add_argument(
        "--clips", type=int, default=48, help="clips to draw; those of the two bounces are kept (default 48)"
    )
    parser.add_argument("--seed", type=int, default=0, help="first scene and noise seed (default 0)")
    parser.add_argument(
        "--lanes", type=float, default=0.0, help="share of scenes drawn in lanes, in [0, 1] (default 0)"
    )
    parser.add_argument("--sheet", help="write the first clip's x_0 at sigma 1 as this PNG (see above)")
    args = parser.parse_args()
    if args.sheet and not args.sheet.lower().endswith(".png"):
        raise SystemExit(f"motion_use: --sheet writes a PNG, got {args.sheet!r}")
    if args.clips < 1:
        raise SystemExit(f"motion_use: --clips must be a positive integer, got {args.clips}")
    if not 0.0 <= args.lanes <= 1.0:
        raise SystemExit(f"motion_use: --lanes is a share in [0, 1], got {args.lanes}")
    if not (Path(args.model) / "model_index.json").is_file():
        raise SystemExit(f"motion_use: {args.model} is not an OmniPipeline folder (no model_index.json)")

    pipe = OmniPipeline.from_pretrained(args.model)
    model = pipe.transformer.eval()
    options = {"num_objects": 1, "lanes": args.lanes}
    stream = StreamedSamples(
        "toyworld", pipe, default_format(pipe), pipe.config.max_text_tokens, options=options
    )
    first = 700_000_000 + args.seed * args.clips  # far from training streams and evaluation suites
    captions = [
        clip.load().caption
        for clip in build_source("toyworld", stream.format, count=args.clips, seed=first, **options)
    ]
    found = {i: motion for i, caption in enumerate(captions) if (motion := motion_of(caption))}
    keep, motions = list(found), list(found.values())
    if not keep:
        raise SystemExit(
            "motion_use: no clip bounces left and right or up and down among those drawn; raise --clips"
        )
    batch = stream.load(args.clips, first)
    video = batch.video[keep]
    says_horizontal = np.array([m == "horizontal" for m, _ in motions])
    text_true = (batch.text[keep], batch.text_mask[keep])
    text_swapped = stream.encoder.text([swapped(captions[i], *m) for i, m in zip(keep, motions)])
    truth = pipe.decode_video(video)
    colours = [object_colour(clip) for clip in truth]
    rooms = [room_colour(clip) for clip in truth]

    def spreads(frames: np.ndarray) -> np.ndarray:
        """axis_spread of each clip's track of its object's colour, for (N, F, H, W, 3) frames."""
        return np.array([axis_spread(colour_centroids(clip, c)) for clip, c in zip(frames, colours)])

    def extents(frames: np.ndarray) -> np.ndarray:
        """How much wider each clip's object colour lies along x than along y over all its frames (px)."""
        return np.array([np.subtract(*colour_extent(f, c, r)) for f, c, r in zip(frames, colours, rooms)])

    sign = np.where(says_horizontal, 1.0, -1.0)
    n = len(keep)

    def estimate(noisy: torch.Tensor, sigma: float, text) -> torch.Tensor:
        streams = [
            LatentStream(
                "video", noisy, torch.full((n,), sigma * 1000), frame_seconds=batch.video_frame_seconds
            )
        ]
        with torch.no_grad():
            return noisy - sigma * model(streams, *text)[0]

    print(
        f"{args.model}: {n} one-object clips ({int(says_horizontal.sum())} left and right, "
        f"{int((~says_horizontal).sum())} up and down), lanes {args.lanes:g}"
    )
    print(
        f"the true clips: track {np.nanmean(sign * spreads(truth)):.1f} px, "
        f"extent {np.nanmean(sign * extents(truth)):.1f} px"
    )
    print("sigma  x_0 error  +swapped word  word's pull (px)  word's extent (px)")
    generator = torch.Generator().manual_seed(args.seed)
    for sigma in SIGMAS:
        noisy = (1 - sigma) * video + sigma * torch.randn(video.shape, generator=generator)
        x0_true, x0_swapped = estimate(noisy, sigma, text_true), estimate(noisy, sigma, text_swapped)
        error = float((x0_true - video).square().mean())
        raised = float((x0_swapped - video).square().mean()) / error - 1
        # caption says horizontal minus caption says vertical, on the same noisy clip
        frames_true, frames_swapped = pipe.decode_video(x0_true), pipe.decode_video(x0_swapped)
        pull = sign * (spreads(frames_true) - spreads(frames_swapped))
        extent = sign * (extents(frames_true) - extents(frames_swapped))
        if args.sheet and sigma == 1.0:
            write_sheet(args.sheet, [truth[0], frames_true[0], frames_swapped[0]])
        print(
            f"{sigma:5.2f}  {error:9.4f}  {raised:+12.2%}  {np.nanmean(pull):16.1f}  {np.nanmean(extent):18.1f}"
        )


if __name__ == "__main__":
    main()
