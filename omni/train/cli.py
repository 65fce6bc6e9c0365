"""`omni train`: run a training recipe on this process, or on many with `torchrun -m omni.train`."""

from __future__ import annotations

import argparse

import yaml


def _override(text: str) -> tuple[str, object]:
    """`key.sub=value` with a YAML value (numbers, booleans, lists)."""
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"--set takes key=value (e.g. optim.lr=1e-4), got {text!r}")
    key, value = text.split("=", 1)
    return key.strip(), yaml.safe_load(value)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", required=True, help="recipe name in configs/train/ or a .yaml path")
    p.add_argument(
        "--set",
        dest="overrides",
        type=_override,
        action="append",
        default=[],
        help="override a recipe value, e.g. --set steps=100 --set optim.lr=1e-4 (repeatable)",
    )
    p.add_argument("--no-resume", action="store_true", help="start fresh even if checkpoints exist")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> None:
    from omni.train.config import load_train_config
    from omni.train.trainer import train

    config = load_train_config(args.config, dict(args.overrides))
    result = train(config, resume=not args.no_resume)
    if result.export is not None:
        print(f"trained {result.steps} steps, last loss {result.last_loss:.4f}; exported {result.export}")


def register(subparsers) -> None:
    add_arguments(
        subparsers.add_parser("train", help="train omni on prepared latent shards (one process or torchrun)")
    )
