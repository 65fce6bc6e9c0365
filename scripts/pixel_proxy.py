"""Train and score the transformer on pixels instead of VAE latents: what the toy recipe can learn without the
video VAE's latent space in the way (BENCHMARKS.md, "the transformer on pixels instead of latents").

The "latents" are the frames themselves in the toy VAE's layout: 2x2 average pooling, the first frame alone
and then frame pairs averaged (1 + (F - 1) / 2 latent frames), RGB mapped to 8 channels by a fixed
orthonormal map. They decode exactly (the map's transpose, frames repeated, pixels upsampled), so the toy
world's detectors score samples. Audio, text and shards come from the given codecs folder as usual.

    python scripts/pixel_proxy.py prepare CODECS OUT --count 3000
    omni train --config toy --set model.codecs=CODECS --set data.shards=OUT --set checkpoint.dir=RUN
    python scripts/pixel_proxy.py eval RUN/export --seeds 16

Image-only runs (`--set "tasks={t2i: 1.0}"`) are scored on the suite's first frames with `eval --task t2i`:
colour and shape of the main object of one generated image. They have no audio tokens, so untrained codecs
serve for their shards: `omni codecs --preset toy --out CODECS --video-steps 0 --audio-steps 0
--vocoder-steps 0 --eval-clips 2`.
"""

from __future__ import annotations

import argparse
import types

import numpy as np
import torch
from torch import Tensor

from omni.pipelines import inputs
from omni.pipelines.pipeline_omni import OmniPipeline

CHANNELS = 8  # the toy VAE's z_dim: the transformer built for it runs unchanged
SCALE = 0.35  # about the std of the mapped toy-world pixels, so the "latents" have roughly unit variance


def basis() -> Tensor:
    """(8, 3) orthonormal columns, the same on every run."""
    generator = torch.Generator().manual_seed(0)
    return torch.linalg.qr(torch.randn(CHANNELS, CHANNELS, generator=generator))[0][:, :3]


def encode(frames: np.ndarray) -> Tensor:
    """(F, H, W, 3) uint8, F = 1 + 2k -> (1, 8, 1 + k, H / 2, W / 2)."""
    x = torch.nn.functional.avg_pool3d(inputs.frames_to_tensor(frames).float(), (1, 2, 2))
    if x.shape[2] > 1:
        x = torch.cat([x[:, :, :1], x[:, :, 1:].unflatten(2, (-1, 2)).mean(3)], dim=2)
    return torch.einsum("kc,bcfhw->bkfhw", basis(), x) / SCALE


def decode(latents: Tensor) -> np.ndarray:
    """(B, 8, 1 + k, h, w) -> (B, 1 + 2k, 2h, 2w, 3) uint8."""
    x = torch.einsum("kc,bkfhw->bcfhw", basis(), latents.float() * SCALE)
    x = torch.cat([x[:, :, :1], x[:, :, 1:].repeat_interleave(2, dim=2)], dim=2)
    x = torch.nn.functional.interpolate(x, scale_factor=(1, 2, 2), mode="nearest").clamp(-1, 1)
    return inputs.tensor_to_frames(x)


def on_pixels(pipe: OmniPipeline) -> OmniPipeline:
    """The pipeline with its video VAE replaced by the pixel map (images too: they are one-frame clips)."""
    pipe.encode_video = types.MethodType(lambda self, frames: encode(frames), pipe)
    pipe.decode_video = types.MethodType(lambda self, latents: decode(latents), pipe)
    return pipe


def prepare_shards(codecs: str, out: str, count: int, seed: int) -> str:
    from omni.data.prepare import PrepareConfig, default_format, prepare
    from omni.data.sources import build_source

    pipe = on_pixels(OmniPipeline.from_pretrained(codecs))
    fmt = default_format(pipe, fps=None, height=None, width=None, frames=None)
    config = PrepareConfig(format=fmt, max_text_tokens=pipe.config.max_text_tokens)
    source = build_source("toyworld", fmt, count=count, seed=seed)
    return prepare(source, pipe, out, config, codecs=codecs, progress=True).line()


def score(model: str, seeds: int, first_seed: int) -> dict[str, float]:
    """Text-to-video on the evaluation suite's scenes: colour, shape and motion accuracy."""
    from omni.eval.toyworld.evaluate import EvalSettings, Report, ToyworldEvaluation

    evaluation = ToyworldEvaluation(
        on_pixels(OmniPipeline.from_pretrained(model)), EvalSettings(seeds=seeds, first_seed=first_seed)
    )
    report = Report()
    evaluation.t2av(report)
    rows = report.details["t2av"]
    return {
        key: float(np.mean([row[key] for row in rows]))
        for key in ("color_accuracy", "shape_accuracy", "motion_accuracy")
    }


def score_images(
    model: str, seeds: int, first_seed: int, sheet: str | None = None, **sampling
) -> dict[str, float]:
    """Text-to-image on the evaluation suite's captions: is the main object of the asked-for colour and shape.
    `sheet`, if given, is a PNG contact sheet of the images (8 a row) to look at; `sampling` goes to the
    pipeline (`guidance_scale`, `num_inference_steps`; None: the model's default)."""
    from PIL import Image

    from omni.data.toyworld.captions import canonical_caption
    from omni.eval.toyworld.evaluate import suite_scene
    from omni.eval.toyworld.shape import track_shape
    from omni.eval.toyworld.tracks import track_objects

    pipe = on_pixels(OmniPipeline.from_pretrained(model))
    colour, shape, images = [], [], []
    for seed in range(first_seed, first_seed + seeds):
        scene = suite_scene(seed)
        image = np.asarray(
            pipe(canonical_caption(scene), task="t2i", seed=seed, progress=False, **sampling).images[0]
        )
        images.append(image)
        tracks = track_objects(image[None], 16).tracks
        main = max(tracks, key=lambda c: np.nanmean(tracks[c].areas), default=None)
        colour.append(main == scene.objects[0].color)
        shape.append(colour[-1] and track_shape(tracks[main]) == scene.objects[0].shape)
    if sheet:
        rows = [np.concatenate(images[i : i + 8], axis=1) for i in range(0, len(images) - len(images) % 8, 8)]
        if rows:
            Image.fromarray(np.concatenate(rows, axis=0)).save(sheet)
    return {"color_accuracy": float(np.mean(colour)), "shape_accuracy": float(np.mean(shape))}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True)
    p = commands.add_parser("prepare", help="render toy-world clips into pixel shards")
    p.add_argument("codecs", help="an OmniPipeline folder for the audio VAE and the text encoder")
    p.add_argument("out")
    p.add_argument("--count", type=int, default=3000)
    p.add_argument("--seed", type=int, default=0)
    e = commands.add_parser("eval", help="score a transformer trained on pixel shards")
    e.add_argument("model", help="an export of a run on pixel shards")
    e.add_argument("--seeds", type=int, default=16)
    e.add_argument("--first-seed", type=int, default=10_000)
    e.add_argument(
        "--task", choices=("t2av", "t2i"), default="t2av", help="score clips (t2av) or single images (t2i)"
    )
    e.add_argument("--sheet", help="t2i: also save the images as a PNG contact sheet here")
    e.add_argument("--guidance", type=float, help="t2i: guidance scale (default: the model's)")
    e.add_argument("--steps", type=int, help="t2i: sampling steps (default: the model's)")
    args = parser.parse_args()
    if args.command == "prepare":
        print(prepare_shards(args.codecs, args.out, args.count, args.seed))
    else:
        if args.task == "t2i":
            scores = score_images(
                args.model, args.seeds, args.first_seed, args.sheet,
                guidance_scale=args.guidance, num_inference_steps=args.steps,
            )  # fmt: skip
        else:
            scores = score(args.model, args.seeds, args.first_seed)
        for key, value in scores.items():
            print(f"{key}: {value:.1%}")


if __name__ == "__main__":
    main()
