"""`omni bench generate`: wall time of a clip with audio from a model at its default settings."""

from __future__ import annotations

import statistics
import time


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
