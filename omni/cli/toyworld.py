"""`omni toyworld render`: write toy-world clips (`<stem>.mp4` + `<stem>.json`) for seeds S .. S + N - 1."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from omni.cli import COMMANDS


def register(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the `toyworld` command (with its `render` subcommand) to the main CLI's subparsers."""
    parser = subparsers.add_parser("toyworld", help=COMMANDS["toyworld"][1])
    add_subcommands(parser)
    return parser


def add_subcommands(parser: argparse.ArgumentParser) -> None:
    """Attach the toy world's subcommands to `parser`; each sets `run`, called with the parsed args."""
    commands = parser.add_subparsers(dest="toyworld_command", required=True, metavar="COMMAND")
    render = commands.add_parser("render", help="render N clips from consecutive seeds into a folder")
    render.add_argument("--seed", type=int, default=0, help="seed of the first clip; clip i uses seed + i")
    render.add_argument("--count", type=_positive_int, default=1, help="number of clips")
    render.add_argument("--out", type=Path, required=True, help="output folder")
    render.add_argument("--fps", type=float, default=16.0, help="frames per second (default 16)")
    render.add_argument("--frames", type=int, default=33, help="frames per clip, 1 + 4k (default 33)")
    render.add_argument(
        "--size", type=int, default=64, help="square frame size, a multiple of 16 (default 64)"
    )
    render.set_defaults(run=run_render)


def run_render(args: argparse.Namespace) -> int:
    """Render `args.count` clips named `toy_<seed>` and print one summary line."""
    from tqdm import tqdm

    from omni.toyworld.clip import render_to_files
    from omni.toyworld.sampling import sample_scene

    fmt = dict(fps=args.fps, num_frames=args.frames, width=args.size, height=args.size)
    try:
        sample_scene(args.seed, **fmt)  # report a bad format before the progress bar starts
    except ValueError as error:
        raise SystemExit(f"toyworld render: {error}") from error
    try:
        from omni.media import write_mp4  # noqa: F401
    except ImportError as error:
        raise SystemExit(f"toyworld render: writing mp4 files needs omni.media ({error})") from error
    start = time.perf_counter()
    seeds = range(args.seed, args.seed + args.count)
    for seed in tqdm(seeds, desc="toyworld", unit="clip"):
        render_to_files(sample_scene(seed, **fmt), args.out, f"toy_{seed:06d}")
    seconds = time.perf_counter() - start
    print(
        f"wrote {args.count} clips (seeds {seeds[0]}..{seeds[-1]}, {args.size}x{args.size}, "
        f"{args.frames} frames at {args.fps:g} fps) to {args.out} in {seconds:.1f} s "
        f"({1000 * seconds / args.count:.0f} ms/clip)"
    )
    return 0


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {value}")
    return value
