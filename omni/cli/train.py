"""`omni train`: run a training recipe on this process, or on many with `torchrun -m omni.train`."""

from __future__ import annotations

import argparse
import os

import yaml

from omni.cli import COMMANDS


def _override(text: str) -> tuple[str, object]:
    """`key.sub=value` with a YAML value (numbers, booleans, lists)."""
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"--set takes key=value (e.g. optim.lr=1e-4), got {text!r}")
    key, value = text.split("=", 1)
    try:
        return key.strip(), yaml.safe_load(value)
    except (yaml.YAMLError, RecursionError) as error:
        raise argparse.ArgumentTypeError(f"--set {key.strip()}: the value is not valid YAML") from error


def _positive_minutes(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not (value > 0 and value < float("inf")):
        raise argparse.ArgumentTypeError(f"--minutes takes a positive number of minutes, got {text!r}")
    return value


def add_set_argument(p: argparse.ArgumentParser, dest: str, help: str) -> None:
    """A repeatable `--set key.sub=value`, collected as (key, value) pairs in `dest`."""
    p.add_argument("--set", dest=dest, type=_override, action="append", default=[], help=help)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", required=True, help="recipe name in omni/configs/train/ or a .yaml path")
    add_set_argument(
        p, "overrides", "override a recipe value, e.g. --set steps=100 --set optim.lr=1e-4 (repeatable)"
    )
    p.add_argument("--no-resume", action="store_true", help="start fresh even if checkpoints exist")
    p.add_argument(
        "--minutes",
        type=_positive_minutes,
        help="stop this stretch after MINUTES of wall time with a checkpoint and an export (a rerun resumes)",
    )
    p.add_argument(
        "--export-only",
        metavar="DIR",
        help="train nothing: write the newest checkpoint's EMA weights to DIR as a pipeline folder",
    )
    p.add_argument(
        "--print-config",
        action="store_true",
        help="train nothing: print the recipe as it will run (its bases and --set applied) as YAML",
    )
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> None:
    from omni.train.config import load_train_config
    from omni.train.trainer import train

    config = load_train_config(args.config, dict(args.overrides))
    if args.print_config:
        from omni.config import to_dict

        print(yaml.safe_dump(to_dict(config), sort_keys=False), end="")
        return
    if args.export_only and args.no_resume:
        raise SystemExit("omni train: --export-only exports a checkpoint; --no-resume would ignore it")
    max_seconds = None if args.minutes is None else 60 * args.minutes
    result = train(config, resume=not args.no_resume, export_only=args.export_only, max_seconds=max_seconds)
    if int(os.environ.get("RANK", "0")) != 0:
        return
    if args.export_only:
        print(f"exported step {result.steps} of {config.checkpoint.dir} to {result.export}")
    elif result.export is not None and not result.losses:
        print(f"step {result.steps} of {config.steps}: nothing left to train; exported {result.export}")
    elif result.export is not None:
        print(
            f"trained {len(result.losses)} step{'s' if len(result.losses) != 1 else ''} to step {result.steps}, last loss {result.last_loss:.4f}; "
            f"exported {result.export}"
        )


def register(subparsers) -> None:
    add_arguments(subparsers.add_parser("train", help=COMMANDS["train"][1]))
