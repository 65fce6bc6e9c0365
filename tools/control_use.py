#!/usr/bin/env python
"""How much a toy-world model places its object where the trajectory control says, per noise level.

    .venv/bin/python tools/control_use.py MODEL_FOLDER [--clips 16] [--seed 0]

Renders toy-world clips, noises their video to each sigma and asks the model for the video's x_0 twice: with
the clip's own subject trajectory as motion-control maps (what `omni generate --trajectory` gives it) and
without. Prints, per sigma, the x_0 error both ways and how far the object's colour sits from its true centre
(the centroid of the pixels near the object's colour, median over every fourth frame, in pixels). At sigma 1
(pure noise, the sampler's first step) nothing but the control can say where the object is: a model that
reads it puts the colour within a few pixels of the centre, one that does not spreads it over the frame
(about 19 px away). At sigma 0.95 and below the noised video already shows the object, and the control has
little left to add. No sampling: about a minute on one core.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from omni.conditioning.motion import Trajectory, control_maps
from omni.data.prepare import default_format
from omni.data.stream import StreamedSamples
from omni.models.streams import LatentStream
from omni.pipelines.pipeline_omni import OmniPipeline
from omni.toyworld.probes import colour_centroids, object_colour

SIGMAS = (0.8, 0.9, 0.95, 0.99, 1.0)


def colour_centroid_error(frames: np.ndarray, truth: np.ndarray, centres: np.ndarray) -> list[float]:
    """Distances (px) of the colour centroid from the true centre, every fourth frame of each clip.

    frames, truth: (N, F, H, W, 3) uint8; centres: (N, F, 2) true (x, y) per frame, NaN where unknown. The
    centroid follows the object's true colour wherever x_0 puts it, whole or spread
    (`omni.toyworld.probes.colour_centroids`).
    """
    errors = []
    for clip, true_clip, path in zip(frames, truth, centres):
        colour = object_colour(true_clip)
        if colour is None:
            continue
        found = colour_centroids(clip[::4], colour) - path[::4]
        errors += [float(d) for d in np.linalg.norm(found, axis=-1) if not np.isnan(d)]
    return errors


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", help="an OmniPipeline folder of the toy preset (e.g. omni/assets/toy)")
    parser.add_argument("--clips", type=int, default=16, help="toy-world clips to average over (default 16)")
    parser.add_argument("--seed", type=int, default=0, help="first scene and noise seed (default 0)")
    args = parser.parse_args()
    if args.clips < 1:
        raise SystemExit(f"control_use: --clips must be a positive integer, got {args.clips}")
    if not (Path(args.model) / "model_index.json").is_file():
        raise SystemExit(f"control_use: {args.model} is not an OmniPipeline folder (no model_index.json)")

    pipe = OmniPipeline.from_pretrained(args.model)
    model = pipe.transformer.eval()
    if not model.config.control_channels:
        raise SystemExit(f"control_use: {args.model} has no motion control (control_channels = 0)")
    stream = StreamedSamples("toyworld", pipe, default_format(pipe), pipe.config.max_text_tokens)
    batch = stream.load(args.clips, 600_000_000 + args.seed * args.clips)  # far from training and suites
    video, text = batch.video, (batch.text, batch.text_mask)
    centres = batch.motion[..., :2].double().numpy()  # (N, F, 2): NaN for clips of two objects
    known = [i for i in range(len(centres)) if not np.isnan(centres[i]).all()]
    if not known:
        raise SystemExit("control_use: no clip of one object among the clips drawn; raise --clips")
    video, centres, text = video[known], centres[known], (text[0][known], text[1][known])
    n, grid = len(known), tuple(video.shape[2:])
    temporal = (centres.shape[1] - 1) // (grid[0] - 1) if grid[0] > 1 else 1
    control = torch.stack(
        [control_maps(grid, batch.frame_size, None, Trajectory(path), temporal) for path in centres]
    )
    truth = pipe.decode_video(video)
    generator = torch.Generator().manual_seed(args.seed)

    def estimate(noisy: torch.Tensor, sigma: float, maps: torch.Tensor | None) -> torch.Tensor:
        streams = [
            LatentStream(
                "video",
                noisy,
                torch.full((n,), sigma * 1000),
                frame_seconds=batch.video_frame_seconds,
                control=maps,
            )
        ]
        with torch.no_grad():
            velocity = model(streams, *text)[0]
        return noisy - sigma * velocity

    print(f"{args.model}: {n} clips of one object; x_0 of the video, with and without its trajectory")
    print("         x_0 mean squared error        colour's distance from the object's centre (px, median)")
    print("sigma    no control    control         no control    control")
    for sigma in SIGMAS:
        noisy = (1 - sigma) * video + sigma * torch.randn(video.shape, generator=generator)
        row = []
        for maps in (None, control):
            x0 = estimate(noisy, sigma, maps)
            error = float((x0 - video).square().mean())
            distance = float(np.median(colour_centroid_error(pipe.decode_video(x0), truth, centres)))
            row.append((error, distance))
        (e0, d0), (e1, d1) = row
        print(f"{sigma:5.2f}  {e0:11.4f}  {e1:9.4f}  {e1 / e0 - 1:+6.1%}  {d0:12.1f}  {d1:9.1f}")


if __name__ == "__main__":
    main()
