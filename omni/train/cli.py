"""`omni train`: run a training recipe on this process, or on many with `torchrun -m omni.train`."""

from __future__ import annotations

import argparse
import os

import yaml


def _override(text: str) -> tuple[str, object]:
    """`key.sub=value` with a YAML value (numbers, booleans, lists)."""
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"--set takes key=value (e.g. optim.lr=1e-4), got {text!r}")
    key, value = text.split("=", 1)
    try:
        return key.strip(), yaml.safe_load(value)
    except (yaml.YAMLError, RecursionError) as error:
        raise argparse.ArgumentTypeError(f"--set {key.strip()}: the value is not valid YAML") from error


def add_set_argument(p: argparse.ArgumentParser, dest: str, help: str) -> None:
    """A repeatable `--set key.sub=value`, collected as (key, value) pairs in `dest`."""
    p.add_argument("--set", dest=dest, type=_override, action="append", default=[], help=help)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", required=True, help="recipe name in configs/train/ or a .yaml path")
    add_set_argument(
        p, "overrides", "override a recipe value, e.g. --set steps=100 --set optim.lr=1e-4 (repeatable)"
    )
    p.add_argument("--no-resume", action="store_true", help="start fresh even if checkpoints exist")
    p.add_argument(
        "--export-only",
        metavar="DIR",
        help="train nothing: write the newest checkpoint's EMA weights to DIR as a pipeline folder",
    )
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> None:
    from omni.train.config import load_train_config
    from omni.train.trainer import train

    config = load_train_config(args.config, dict(args.overrides))
    if args.export_only and args.no_resume:
        raise SystemExit("omni train: --export-only exports a checkpoint; --no-resume would ignore it")
    result = train(config, resume=not args.no_resume, export_only=args.export_only)
    if int(os.environ.get("RANK", "0")) != 0:
        return
    if args.export_only:
        print(f"exported step {result.steps} of {config.checkpoint.dir} to {result.export}")
    elif result.export is not None:
        print(f"trained {result.steps} steps, last loss {result.last_loss:.4f}; exported {result.export}")


def register(subparsers) -> None:
    add_arguments(
        subparsers.add_parser("train", help="train omni on prepared latent shards (one process or torchrun)")
    )
    register_codecs(subparsers)


def codec_training(args: argparse.Namespace):
    """The `CodecTraining` an `omni codecs` command line asks for (its checks run here)."""
    from dataclasses import fields

    from omni.train.codecs import CodecTraining

    return CodecTraining(
        **{
            f.name: getattr(args, f.name)
            for f in fields(CodecTraining)
            if getattr(args, f.name, None) is not None
        }
    )


def run_codecs(args: argparse.Namespace) -> None:
    from omni.pipelines.presets import load_preset
    from omni.train.codecs import train_codecs

    preset = load_preset(args.preset, dict(args.preset_overrides))
    report = train_codecs(preset, args.out, codec_training(args))
    print(
        f"codecs in {args.out}: video PSNR {report['video_psnr_db']:.2f} dB, audio VAE mel L1 "
        f"{report['audio_vae_mel_l1']:.3f}, vocoder mel L1 {report['vocoder_mel_l1']:.3f} (held-out toy clips)"
    )


def register_codecs(subparsers) -> None:
    from dataclasses import fields

    from omni.train.codecs import CodecTraining

    p = subparsers.add_parser(
        "codecs", help="train a preset's video VAE, audio VAE and vocoder on the toy world"
    )
    p.add_argument("--preset", default="toy")
    add_set_argument(
        p,
        "preset_overrides",
        "override a preset value, e.g. --set vae.temperal_downsample=[true,true] (repeatable)",
    )
    p.add_argument("--out", required=True, help="pipeline folder to write (finished stages are reused)")
    for f in fields(CodecTraining):
        p.add_argument(f"--{f.name.replace('_', '-')}", type=type(f.default), help=f"default {f.default}")
    p.set_defaults(run=run_codecs)
