"""`omni prepare`: encode a manifest of clips (or toy-world clips) into latent shards for training."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from omni.cli import COMMANDS, size
from omni.data.shard_format import STORAGE_DTYPES


def parse_frames(text: str) -> tuple[int, ...]:
    """`33` or `17,33,65` -> ascending frame counts (validated against the VAE later, with the model)."""
    try:
        frames = tuple(sorted({int(part) for part in text.split(",") if part.strip()}))
    except ValueError as error:
        raise argparse.ArgumentTypeError(
            f"--frames must be comma-separated integers such as 33,65, got {text!r}"
        ) from error
    if not frames:
        raise argparse.ArgumentTypeError(f"--frames needs at least one frame count, got {text!r}")
    return frames


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from error
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def register(subparsers) -> argparse.ArgumentParser:
    """Add `prepare` to the main CLI's subparsers."""
    p = subparsers.add_parser(
        "prepare",
        help=COMMANDS["prepare"][1],
        description="Encode clips with a pipeline's video VAE, audio VAE and text encoder into safetensors "
        "shards. Rerunning with the same arguments resumes an interrupted run.",
    )
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--manifest", type=Path, help='JSONL manifest: {"video": ..., "caption": ..., "audio": ...}'
    )
    source.add_argument(
        "--toyworld", action="store_true", help="render toy-world clips (with --count, --seed)"
    )
    p.add_argument("--count", type=_positive_int, help="toy-world clips to render")
    p.add_argument("--seed", type=int, help="seed of the first toy-world clip (default 0)")
    p.add_argument(
        "--model", type=Path, required=True, help="OmniPipeline folder whose codecs encode the clips"
    )
    p.add_argument("--out", type=Path, required=True, help="output folder (new, empty, or a run to resume)")
    p.add_argument("--fps", type=float, help="frames per second (default: the model's)")
    p.add_argument("--size", type=size, help="N or WxH in pixels, multiples of 16 (default: the model's)")
    p.add_argument("--frames", type=parse_frames, help="allowed frame counts, 1 + 4k each, e.g. 33,65")
    p.add_argument("--shard-size", type=_positive_int, default=256, help="samples per shard (default 256)")
    p.add_argument("--max-text-tokens", type=_positive_int, help="text length (default: the model's)")
    p.add_argument(
        "--storage-dtype", choices=sorted(STORAGE_DTYPES), default="bfloat16", help="dtype of stored latents"
    )
    p.add_argument("--device", default="auto", help="auto (CUDA GPU when present), cpu, cuda, cuda:N")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(run=run_prepare)
    return p


def run_prepare(args: argparse.Namespace) -> int:
    """Load the codecs, prepare the clips, print a summary line; exit status 1 when no clip could be used."""
    from omni.data.prepare import PrepareConfig, default_format, prepare
    from omni.data.sources import build_source
    from omni.pipelines.loading import resolve_device
    from omni.pipelines.pipeline_omni import OmniPipeline

    if not args.toyworld and (args.count is not None or args.seed is not None):
        raise ValueError("--count and --seed apply to --toyworld only; a manifest prepares all of its clips")
    if args.toyworld and args.count is None:
        raise ValueError("--toyworld needs --count N (how many clips to render)")
    device = resolve_device(args.device)
    start = time.perf_counter()
    pipe = OmniPipeline.from_pretrained(args.model).to(device)
    height, width = args.size if args.size else (None, None)
    fmt = default_format(pipe, fps=args.fps, height=height, width=width, frames=args.frames)
    if args.toyworld:
        source = build_source("toyworld", fmt, count=args.count, seed=args.seed or 0)
    else:
        source = build_source("manifest", fmt, path=args.manifest)
    config = PrepareConfig(
        format=fmt,
        max_text_tokens=args.max_text_tokens or pipe.config.max_text_tokens,
        shard_size=args.shard_size,
        storage_dtype=args.storage_dtype,
    )
    print(
        f"loaded codecs from {args.model} on {device} in {time.perf_counter() - start:.1f} s", file=sys.stderr
    )
    summary = prepare(source, pipe, args.out, config, codecs=args.model, progress=not args.no_progress)
    print(f"{summary.line()}; wrote {args.out}")
    return 0 if summary.samples else 1
