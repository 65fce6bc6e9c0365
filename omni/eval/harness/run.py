"""`omni bench run`: generate every item of a suite into a results folder, resumably, with timings.

Each item becomes `<out>/<id>.mp4` (`.png`, `.wav`), written atomically, so an item whose file exists is
complete and a rerun skips it. `<out>/run.json` records the model, the device and every item's timings;
it is rewritten after each item, so an interrupted run keeps what it measured.
"""

from __future__ import annotations

import datetime
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from omni import media
from omni.config import read_json
from omni.eval.harness.suite import Suite, SuiteItem, scenes
from omni.media.atomic import write_json

RUN_FILE = "run.json"


def item_conditions(suite: Suite, item: SuiteItem) -> dict[str, Any]:
    """The pipeline keyword arguments for the item's input file (image, audio or video), read from disk."""
    relative = item.input_path
    if relative is None:
        return {}
    path = suite.resolve(relative)
    if not path.is_file():
        raise FileNotFoundError(
            f"item {item.id!r}: input {relative} not found at {path} "
            "(the workflow suite's inputs are made by `python scripts/make_suite_inputs.py`)"
        )
    if item.image is not None:
        return {"image": media.read_image(path)}
    if item.audio is not None:
        audio, rate = media.read_audio(path)
        return {"audio": audio, "audio_sample_rate": rate}
    clip = media.read_video(path)
    if not clip.has_video:
        raise ValueError(f"item {item.id!r}: input {path} has no video stream")
    return {"video": clip.frames, "video_fps": clip.fps}


def generate_item(pipeline: Callable, suite: Suite, item: SuiteItem, seed: int, **options):
    """Run `pipeline` for `item`: one call, or one per shot (seeds seed, seed + 1, ...) joined end to end,
    as one `OmniPipelineOutput` whose timings add up the shots'.

    `options` go to every pipeline call (e.g. num_inference_steps).
    """
    from omni.pipelines.pipeline_omni import OmniPipelineOutput

    conditions = item_conditions(suite, item)
    size = item.height_width
    height, width = size if size else (None, None)
    prompts = item.prompts
    seconds = None if item.seconds is None else item.seconds / len(prompts)
    outputs = []
    for shot, prompt in enumerate(prompts):
        outputs.append(
            pipeline(
                prompt,
                task=item.task,
                seconds=seconds,
                fps=item.fps,
                height=height,
                width=width,
                seed=seed + shot,
                progress=False,
                **conditions,
                **options,
            )
        )
    timings: dict[str, float] = {}
    for out in outputs:
        for stage, value in out.timings.items():
            timings[stage] = timings.get(stage, 0.0) + value
    first = outputs[0]
    if first.images is not None:
        return OmniPipelineOutput(None, first.images[:1], None, first.fps, first.sample_rate, timings)
    audio = None if first.audio is None else np.concatenate([o.audio[:1] for o in outputs], axis=-1)
    frames = None if first.frames is None else np.concatenate([o.frames[:1] for o in outputs], axis=1)
    return OmniPipelineOutput(frames, None, audio, first.fps, first.sample_rate, timings)


def run_suite(
    suite: Suite,
    pipeline: Callable,
    out_dir: str | Path,
    *,
    system: dict[str, Any],
    seed: int = 0,
    limit: int | None = None,
    progress: bool = True,
    **options,
) -> dict[str, Any]:
    """Generate the first `limit` items of `suite` (all when None) into `out_dir`; return the run record.

    Items whose output exists are skipped. `system` describes what generated them (model, device, ...) and
    goes into run.json; an item's seed is its own, else `seed`.
    """
    from tqdm import tqdm

    from omni.media.output import write_result

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    record = read_run(out_dir)
    record.update(suite=suite.name, suite_path=str(suite.path) if suite.path else None, system=system)
    record.setdefault("items", {})
    items = suite.items[:limit]
    bar = tqdm(items, desc=f"bench {suite.name}", unit="item", disable=not progress)
    for item in bar:
        path = out_dir / f"{item.id}{item.output_suffix}"
        if path.exists():
            continue
        bar.set_postfix_str(item.id)
        item_seed = item.seed if item.seed is not None else seed
        start = time.perf_counter()
        generated = generate_item(pipeline, suite, item, item_seed, **options)
        write_start = time.perf_counter()
        write_result(path, generated)
        now = time.perf_counter()
        record["items"][item.id] = {
            "file": path.name,
            "seed": item_seed,
            "shots": len(item.prompts),
            "seconds": now - start,
            "timings": {**generated.timings, "write": now - write_start},
            "finished": utc_now(),
        }
        write_run(out_dir, record)
    write_run(out_dir, record)
    return record


def read_run(out_dir: str | Path) -> dict[str, Any]:
    """The run record in `out_dir` (empty when there is none)."""
    path = Path(out_dir) / RUN_FILE
    if not path.is_file():
        return {}
    try:
        return read_json(path, "the run record")
    except ValueError as error:
        raise ValueError(f"{error}; move it away to start a fresh record") from error


def write_run(out_dir: Path, record: dict[str, Any]) -> None:
    record["updated"] = utc_now()
    write_json(out_dir / RUN_FILE, record)


def render_ground_truth(suite: Suite, out_dir: str | Path, *, limit: int | None = None) -> list[str]:
    """Write every toy-world item's ground-truth render as `<id>.mp4`: a reference system (for FVD) and the
    ceiling of every metric. Items without a scene are skipped; returns the ids written."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for item in suite.items[:limit]:
        scene = item.scene_spec()
        path = out_dir / f"{item.id}{item.output_suffix}"
        if scene is None or item.output_suffix != ".mp4" or path.exists():
            continue
        clip = scenes().render(scene)
        media.write_mp4(path, clip.frames, clip.fps, clip.audio, clip.sample_rate)
        written.append(item.id)
    return written


def utc_now() -> str:
    """The time now, UTC, ISO 8601 to the second: the timestamps of run.json, scores.json and the report."""
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
