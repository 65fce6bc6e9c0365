"""`omni bench score`: measure every system's outputs for a suite and write `<results>/scores.json`.

Each sub-folder of the results folder is a system (`omni/`, `veo/`, ...) holding `<id>.<ext>` per suite
item. A missing file, or one that does not decode, is recorded as such and scoring goes on; so is a metric
that fails on a file. Files that match no item are listed.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from omni.config import read_json
from omni.eval.harness.catalogue import CATALOGUE
from omni.eval.harness.decoded import DecodedMedia, decode_output
from omni.eval.harness.run import RUN_FILE, read_run, utc_now
from omni.eval.harness.suite import Suite, SuiteItem, scenes
from omni.eval.learned.base import LearnedMetric
from omni.eval.metrics import (
    av_sync,
    check_compliance,
    clipping_ratio,
    content_credentials,
    integrated_loudness,
    peak_dbfs,
    silence_ratio,
    temporal_stats,
)
from omni.eval.metrics.loudness import STANDARD_WEIGHTS
from omni.eval.metrics.signals import analysis_frames
from omni.media import MediaError
from omni.media.atomic import write_json

SCORES_FILE = "scores.json"
REFERENCE_SYSTEM = "reference"  # the default reference for set metrics (FVD), when such a folder exists


def list_systems(results_dir: Path) -> list[str]:
    """Sub-folders of `results_dir` (hidden ones excluded), sorted."""
    if not results_dir.is_dir():
        raise FileNotFoundError(f"results folder {results_dir} does not exist")
    return sorted(p.name for p in results_dir.iterdir() if p.is_dir() and not p.name.startswith((".", "_")))


def score_results(
    results_dir: str | Path,
    suite: Suite,
    *,
    trust_anchors: str | Path | None = None,
    learned: Sequence[LearnedMetric] = (),
    unavailable: dict[str, str] | None = None,
    systems: list[str] | None = None,
    reference: str | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Score every system's outputs for `suite`, write `<results_dir>/scores.json` and return its content.

    `reference` names the system set metrics (FVD) compare with; default `reference` when that folder exists.
    """
    from tqdm import tqdm

    results_dir = Path(results_dir)
    systems = systems or list_systems(results_dir)
    if reference is None and REFERENCE_SYSTEM in systems:
        reference = REFERENCE_SYSTEM
    features: dict[str, list[np.ndarray]] = {}
    report: dict[str, Any] = {
        "suite": {
            "name": suite.name,
            "path": str(suite.path) if suite.path else None,
            "items": len(suite.items),
        },
        "created": utc_now(),
        "trust_anchors": str(trust_anchors) if trust_anchors else None,
        "reference": reference,
        "learned": {m.name: "available" for m in learned}
        | {k: f"unavailable: {v}" for k, v in (unavailable or {}).items()},
        "systems": {},
    }
    for system in systems:
        system_dir = results_dir / system
        if not system_dir.is_dir():
            raise FileNotFoundError(f"system folder {system_dir} does not exist")
        run = read_run(system_dir)
        outputs, unmatched = find_outputs(system_dir, suite)
        items: dict[str, Any] = {}
        features[system] = []
        for item in tqdm(suite.items, desc=f"score {system}", unit="item", disable=not progress):
            path = outputs.get(item.id)
            if path is None:
                items[item.id] = {"status": "missing", "file": None}
                continue
            entry, vectors = score_file(path, item, suite, trust_anchors, learned)
            entry["file"] = str(path.relative_to(results_dir))
            seconds = run.get("items", {}).get(item.id, {}).get("seconds")
            if entry["status"] == "ok" and seconds is not None:
                entry["metrics"]["generation_seconds"] = seconds
            features[system].extend(vectors)
            items[item.id] = entry
        report["systems"][system] = {
            "items": items,
            "unmatched_files": unmatched,
            "run": {k: v for k, v in run.items() if k != "items"} or None,
        }
    set_values: dict[str, dict] = {}
    for metric in learned:
        for system, values in metric.set_metrics(features, reference).items():
            set_values.setdefault(system, {}).update(values)
    for system, entry in report["systems"].items():
        entry["summary"] = summarize(entry["items"]) | set_values.get(system, {})
    report = json_safe(report)
    write_json(results_dir / SCORES_FILE, report)
    return report


def score_file(
    path: Path,
    item: SuiteItem,
    suite: Suite,
    trust_anchors: str | Path | None,
    learned: Sequence[LearnedMetric],
) -> tuple[dict[str, Any], list[np.ndarray]]:
    """({"status": "ok" | "broken", "metrics", "notes", ...}, set-metric features) for one output file."""
    try:
        output = decode_output(path, item)
    except (MediaError, FileNotFoundError, OSError) as error:
        return {"status": "broken", "error": str(error)}, []
    metrics: dict[str, Any] = {}
    notes: dict[str, str] = {}
    errors: dict[str, str] = {}
    groups = [
        ("media", lambda: media_metrics(output, item, suite, notes)),
        ("credentials", lambda: credential_metrics(path, trust_anchors)),
    ]
    scene = item.scene_spec()
    if scene is not None and output.frames is not None and not output.is_image:
        groups.append(("toy world", lambda: scene_metrics(output, scene)))
    groups += [(metric.name, lambda metric=metric: metric.item_metrics(item, output)) for metric in learned]
    for name, compute in groups:
        try:
            metrics.update(compute())
        except Exception as error:  # one failing metric must not stop a scoring run; it is recorded
            errors[name] = f"{type(error).__name__}: {error}"
            print(f"omni bench score: {path}: {name} metrics failed: {errors[name]}", file=sys.stderr)
    vectors = []
    for metric in learned:
        try:
            vector = metric.item_features(item, output)
        except Exception as error:
            errors[f"{metric.name} features"] = f"{type(error).__name__}: {error}"
            continue
        if vector is not None:
            vectors.append(vector)
    entry: dict[str, Any] = {"status": "ok", "metrics": metrics, "notes": notes}
    if errors:
        entry["metric_errors"] = errors
    return entry, vectors


def media_metrics(
    output: DecodedMedia, item: SuiteItem, suite: Suite, notes: dict[str, str]
) -> dict[str, Any]:
    """Weights-free metrics of a decoded output: request compliance, sync, motion, loudness."""
    frames, audio = output.frames, output.audio
    height = width = None
    if frames is not None:
        height, width = frames.shape[1:3]
    fps = output.fps  # None for an image
    metrics = check_compliance(
        item.request(),
        seconds=output.seconds,
        fps=fps,
        width=width,
        height=height,
        has_audio=audio is not None,
        tolerances=suite.tolerances,
    )
    metrics["has_audio"] = audio is not None
    analysed = analysis_frames(frames) if frames is not None and fps is not None else None
    if analysed is not None:
        metrics.update(vars(temporal_stats(frames, analysed=analysed)))
    if audio is not None:
        metrics.update(
            loudness_lufs=integrated_loudness(audio, output.sample_rate)
            if audio.shape[0] in STANDARD_WEIGHTS
            else None,
            silence_ratio=silence_ratio(audio, output.sample_rate),
            clipping_ratio=clipping_ratio(audio),
            peak_dbfs=peak_dbfs(audio),
        )
    if analysed is not None and audio is not None:
        sync = av_sync(frames, fps, audio, output.sample_rate, analysed=analysed)
        metrics.update(
            av_offset_ms=sync.offset_ms,
            av_determined=sync.determined,
            av_confidence=sync.confidence,
            av_raw_offset_ms=sync.raw_offset_ms,
            av_peak_correlation=sync.peak_correlation,
        )
        if sync.reason:
            notes["av_sync"] = sync.reason
    return metrics


def credential_metrics(path: Path, trust_anchors: str | Path | None) -> dict[str, Any]:
    found = content_credentials(path, trust_anchors)
    return {
        "credentials": found["status"],
        "credentials_present": found["status"] in ("valid", "tampered", "untrusted"),
        "credentials_valid": found["status"] == "valid",
        "credentials_signer": found["signer"],
    }


def scene_metrics(output: DecodedMedia, scene) -> dict[str, Any]:
    """The toy-world capability scores of a clip against the scene its item was made from."""
    return scenes().score(output.frames, output.audio, output.fps, output.sample_rate, scene)


def find_outputs(system_dir: Path, suite: Suite) -> tuple[dict[str, Path], list[str]]:
    """Each item's output in a system folder, and the names of the files that are no item's output.

    An item's output is `<id><suffix>` for the first of its accepted suffixes present, the suffix in any
    case; run.json and hidden files are neither.
    """
    files: dict[tuple[str, str], list[Path]] = {}
    for path in sorted(system_dir.iterdir()):
        if path.is_file() and path.name != RUN_FILE and not path.name.startswith("."):
            files.setdefault((path.stem, path.suffix.lower()), []).append(path)
    outputs, accepted = {}, set()
    for item in suite.items:
        for suffix in item.accepted_suffixes:
            accepted.add((item.id, suffix))
            if item.id not in outputs and (item.id, suffix) in files:
                lowercase_first = sorted(files[(item.id, suffix)], key=lambda p: p.suffix != suffix)
                outputs[item.id] = lowercase_first[0]
    unmatched = sorted(p.name for key, paths in files.items() if key not in accepted for p in paths)
    return outputs, unmatched


def summarize(items: dict[str, Any]) -> dict[str, Any]:
    """Per-system numbers: counts, then each catalogued metric summed up as the catalogue says."""
    scored = [entry["metrics"] for entry in items.values() if entry["status"] == "ok"]
    summary: dict[str, Any] = {
        "items": len(items),
        "scored": len(scored),
        "missing": sum(entry["status"] == "missing" for entry in items.values()),
        "broken": sum(entry["status"] == "broken" for entry in items.values()),
    }
    for info in CATALOGUE:
        values = [m[info.key] for m in scored if m.get(info.key) is not None and not _is_nan(m[info.key])]
        if not values:
            summary[info.key] = None
        elif info.summary == "median_abs":
            summary[info.key] = float(np.median(np.abs(values)))
        else:
            summary[info.key] = float(np.mean(values))  # booleans average to the share that is true
    return summary


def load_scores(results_dir: str | Path) -> dict[str, Any]:
    """The scores.json `omni bench score` wrote into `results_dir`."""
    path = Path(results_dir) / SCORES_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: run `omni bench score {results_dir}` first")
    return read_json(path, "the scores file")


def json_safe(value: Any) -> Any:
    """Plain JSON values: NaN and infinities become None, numpy scalars Python numbers, tuples lists."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _is_nan(value: Any) -> bool:
    return isinstance(value, float) and math.isnan(value)
