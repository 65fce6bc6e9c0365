"""What the toy world offers the engine through `omni.plugins`: a clip source that renders toy-world clips
for `omni prepare --toyworld` and training streams, and the scenes benchmark suites use as ground truth."""

from __future__ import annotations

from typing import Any

import numpy as np

from omni.data.clips import ClipFormat
from omni.data.sources import ClipSource, iterable_source
from omni.toyworld.clip import prepare_clips, render
from omni.toyworld.sampling import motion_probabilities
from omni.toyworld.spec import SceneSpec


def clip_source(
    fmt: ClipFormat,
    *,
    count: int,
    seed: int,
    num_objects: int | None = None,
    lanes: float = 0.0,
    motion_weights: dict[str, float] | None = None,
) -> ClipSource:
    """`count` toy-world clips rendered from `seed` at the format's fps, size and longest frame count;
    `num_objects` (1 or 2) fixes how many objects every scene has (default: 1, or 2 in 15% of scenes);
    `lanes` is the share of scenes whose objects move in lanes, `motion_weights` how often each motion is
    drawn (default: evenly; `omni.toyworld.sampling.sample_scene`)."""
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise ValueError(f"count must be a positive integer, got {count!r}")
    if num_objects not in (None, 1, 2):
        raise ValueError(f"num_objects must be 1 or 2 (or left out for the world's mix), got {num_objects!r}")
    options = dict(
        fps=fmt.fps,
        height=fmt.height,
        width=fmt.width,
        num_frames=fmt.frames[-1],
        sample_rate=fmt.sample_rate,
    )
    if isinstance(lanes, bool) or not isinstance(lanes, (int, float)) or not 0.0 <= lanes <= 1.0:
        raise ValueError(f"lanes is the share of scenes in lanes, a number in [0, 1], got {lanes!r}")
    if num_objects is not None:  # the default mix keeps the identity of sources prepared before the option
        options["num_objects"] = num_objects
    if lanes:  # likewise
        options["lanes"] = lanes
    if motion_weights is not None:  # likewise; checked here, before any clip is rendered
        motion_probabilities(motion_weights)
        options["motion_weights"] = dict(motion_weights)
    identity = {"kind": "toyworld", "count": count, "seed": seed, **options}
    return iterable_source(lambda: prepare_clips(count, seed, **options), identity, count)


class SuiteScene:
    """A benchmark item's `scene`: a toy-world `SceneSpec` as a mapping, its render and its scores."""

    @staticmethod
    def from_dict(data: dict[str, Any]) -> SceneSpec:
        return SceneSpec.from_dict(data)

    @staticmethod
    def render(scene: SceneSpec):
        """The ground-truth clip: `.frames`, `.fps`, `.audio`, `.sample_rate`."""
        return render(scene)

    @staticmethod
    def score(
        frames: np.ndarray, audio: np.ndarray | None, fps: float, sample_rate: int, scene: SceneSpec
    ) -> dict[str, Any]:
        """The toy-world capability scores of a clip against the scene its item was made from."""
        from omni.toyworld.detectors import score_clip

        scores = score_clip(frames, audio, fps, sample_rate, expected=scene)
        return {
            "toy_color_accuracy": scores["color_accuracy"],
            "toy_shape_accuracy": scores["shape_accuracy"],
            "toy_size_accuracy": scores["size_accuracy"],
            "toy_motion_accuracy": scores["motion_accuracy"],
            "toy_extra_objects": scores["extra_objects"],
            "toy_av_sync_ms": scores["av_sync_median_abs_ms"],
            "toy_pitch_color_agreement": scores["pitch_color_agreement"],
        }


suite_scene = SuiteScene()
