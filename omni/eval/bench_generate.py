"""`omni bench generate`: wall time of a clip with audio from a model at its default settings."""

from __future__ import annotations

import argparse
import statistics
import time

import torch


def bench_generate(pipe, seconds: float, repeats: int, steps: int | None, task: str = "t2av") -> dict:
    """Median seconds per generated clip (after one warm-up run) and the median of each stage."""
    prompt = "a small red ball bouncing left and right in a grey room; it beeps at every bounce"
    run = dict(task=task, seconds=seconds, num_inference_steps=steps, progress=False)
    pipe(prompt, seed=0, **run)  # warm-up: first calls allocate and pick kernels
    totals, stages = [], []
    for i in range(repeats):
        start = time.perf_counter()
        out = pipe(prompt, seed=i + 1, **run)
        totals.append(time.perf_counter() - start)
        stages.append(out.timings)
    return {
        "seconds_per_clip": statistics.median(totals),
        "min_seconds": min(totals),
        "stages": {k: statistics.median(s[k] for s in stages) for k in stages[0]},
        "steps": steps or pipe.config.default_steps,
    }


def _run(args: argparse.Namespace) -> None:
    from omni.pipelines.loading import load_model

    loaded = load_model(args.model, args.preset, args.device, args.dtype, args.attention)
    result = bench_generate(loaded.pipeline, args.seconds, args.repeats, args.steps)
    threads = torch.get_num_threads()
    print(
        f"generate {args.seconds:g} s t2av with {loaded.description}, {result['steps']} steps, "
        f"{loaded.pipeline.device} ({threads} threads), median of {args.repeats}:"
    )
    stages = ", ".join(f"{k} {v:.2f} s" for k, v in result["stages"].items())
    print(f"  {result['seconds_per_clip']:.2f} s per clip (best {result['min_seconds']:.2f} s): {stages}")


def register(kinds) -> None:
    from omni.cli import _add_model_arguments

    p = kinds.add_parser(
        "generate", help="seconds per generated clip with audio at the model's default steps"
    )
    p.add_argument("--seconds", type=float, default=2.0, help="clip length")
    p.add_argument("--steps", type=int, help="default: the model's")
    p.add_argument("--repeats", type=int, default=3, help="timed clips (after one warm-up)")
    _add_model_arguments(p)
    p.set_defaults(run=_run)
