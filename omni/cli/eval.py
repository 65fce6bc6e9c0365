"""`omni eval toyworld`: capability metrics of a model on the toy world, as a table and a JSON report."""

from __future__ import annotations

import argparse
import json
import math
import time
from dataclasses import asdict
from pathlib import Path

from omni.cli import COMMANDS, add_model_arguments, integer, number


def run_toyworld(args: argparse.Namespace) -> None:
    from omni.media import atomic_output
    from omni.media.atomic import check_writable
    from omni.pipelines.loading import load_model
    from omni.toyworld.evaluate import TARGETS, EvalSettings, ToyworldEvaluation, format_table

    capabilities = tuple(args.only.split(",")) if args.only else EvalSettings.capabilities
    unknown = sorted(set(capabilities) - set(EvalSettings.capabilities))
    if unknown:
        raise ValueError(
            f"--only: unknown capabilities {unknown}; choose from {list(EvalSettings.capabilities)}"
        )
    settings = EvalSettings(
        seeds=args.seeds, steps=args.steps, guidance=args.guidance, capabilities=capabilities
    )
    check_writable(args.out)  # before the evaluation, not after it
    loaded = load_model(args.model, args.preset, args.device, args.dtype, args.attention)
    start = time.perf_counter()
    report = ToyworldEvaluation(loaded.pipeline, settings).evaluate()
    print(
        f"toy-world evaluation of {loaded.description}: {args.seeds} seeds, {time.perf_counter() - start:.0f} s"
    )
    print(format_table(report.values))
    clean = {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in report.values.items()}
    record = {
        "model": loaded.description,
        "settings": asdict(settings),
        **clean,
        "targets": {k: {"op": op, "value": v} for k, (op, v) in TARGETS.items()},
        "details": report.details,
    }
    with atomic_output(args.out) as tmp:
        tmp.write_text(json.dumps(record, indent=2, default=float))
    print(f"wrote {args.out}")


def register(subparsers) -> None:
    p = subparsers.add_parser("eval", help=COMMANDS["eval"][1])
    kinds = p.add_subparsers(dest="eval", required=True)
    t = kinds.add_parser("toyworld", help="score a model on the toy world's prompt suite")
    t.add_argument("--seeds", type=integer("--seeds", 1, 10_000), default=8, help="scenes per capability")
    t.add_argument("--steps", type=integer("--steps", 1, 1000), help="denoising steps (default: the model's)")
    t.add_argument(
        "--guidance", type=number("--guidance", 0, 100), help="text guidance scale (default: the model's)"
    )
    t.add_argument(
        "--only",
        help="comma-separated capabilities: t2i,t2av,i2v,a2v,v2a,trajectory,extension,retake,project",
    )
    t.add_argument("--out", type=Path, default=Path("report.json"), help="the JSON report")
    add_model_arguments(t)
    t.set_defaults(run=run_toyworld)
