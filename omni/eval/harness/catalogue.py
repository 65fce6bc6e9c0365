"""Every metric `omni bench score` reports: its key, label, unit, which way is better, how systems are summed up."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class MetricInfo:
    """How to show and summarise one per-item metric.

    summary: "mean" over scored items; "ratio" of true over items where it applies (a flag);
    "median_abs" of |value| over items where it is defined.
    """

    key: str
    label: str
    unit: str
    better: Literal["higher", "lower", ""]
    summary: Literal["mean", "ratio", "median_abs"]
    group: str
    axis: tuple[float, float] | None = (
        None  # the chart's range, shared by every system (default: the values')
    )
    target: tuple[float, float] | None = None  # a range worth aiming for, shaded on the chart
    needs: tuple[str, ...] = ()  # "video" / "audio": meaningless when that stream is noise or silence


CATALOGUE = (
    MetricInfo("compliant", "complies with request", "share", "higher", "ratio", "request"),
    MetricInfo("duration_ok", "duration within tolerance", "share", "higher", "ratio", "request"),
    MetricInfo("fps_ok", "frame rate within tolerance", "share", "higher", "ratio", "request"),
    MetricInfo("size_ok", "frame size as requested", "share", "higher", "ratio", "request"),
    MetricInfo("audio_ok", "has sound when asked", "share", "higher", "ratio", "request"),
    MetricInfo(
        "av_offset_ms",
        "AV offset, median |x|",
        "ms",
        "lower",
        "median_abs",
        "sync",
        (0, 500),
        (0, 45),
        ("video", "audio"),
    ),  # 45 ms: where an audio lead starts to be noticed (ITU-R BT.1359)
    MetricInfo(
        "av_determined", "AV offset determined", "share", "higher", "ratio", "sync", needs=("video", "audio")
    ),
    MetricInfo(
        "av_confidence", "AV sync confidence", "sd", "higher", "mean", "sync", needs=("video", "audio")
    ),
    MetricInfo(
        "motion_magnitude", "motion magnitude", "levels/frame", "", "mean", "motion", needs=("video",)
    ),
    MetricInfo(
        "motion_smoothness", "motion smoothness", "0-1", "higher", "mean", "motion", (0, 1), needs=("video",)
    ),
    MetricInfo("flicker", "flicker", "levels", "lower", "mean", "motion", needs=("video",)),
    MetricInfo("frozen_frame_ratio", "frozen frames", "share", "lower", "mean", "motion", needs=("video",)),
    MetricInfo(
        "loudness_lufs", "integrated loudness", "LUFS", "", "mean", "audio", (-70, 0), (-24, -14), ("audio",)
    ),  # EBU R128 broadcast (-23) to streaming (-14) targets
    MetricInfo("silence_ratio", "silent time", "share", "", "mean", "audio"),
    MetricInfo("clipping_ratio", "clipped samples", "share", "lower", "mean", "audio"),
    MetricInfo("peak_dbfs", "sample peak", "dBFS", "", "mean", "audio", (-70, 0)),
    MetricInfo("credentials_present", "has content credentials", "share", "higher", "ratio", "provenance"),
    MetricInfo("credentials_valid", "valid, trusted credentials", "share", "higher", "ratio", "provenance"),
    MetricInfo("toy_color_accuracy", "toy world: colour accuracy", "share", "higher", "mean", "toy world"),
    MetricInfo("toy_shape_accuracy", "toy world: shape accuracy", "share", "higher", "mean", "toy world"),
    MetricInfo("toy_size_accuracy", "toy world: size accuracy", "share", "higher", "mean", "toy world"),
    MetricInfo("toy_motion_accuracy", "toy world: motion accuracy", "share", "higher", "mean", "toy world"),
    MetricInfo("toy_extra_objects", "toy world: extra objects", "count", "lower", "mean", "toy world"),
    MetricInfo(
        "toy_av_sync_ms",
        "toy world: beep - bounce, median |x|",
        "ms",
        "lower",
        "mean",
        "toy world",
        (0, 500),
        (0, 45),
        ("video", "audio"),
    ),
    MetricInfo(
        "toy_pitch_color_agreement", "toy world: pitch names colour", "share", "higher", "mean", "toy world"
    ),
    MetricInfo("clip_score", "CLIP text-video score", "x100 cos", "higher", "mean", "learned"),
    MetricInfo("dino_subject_consistency", "DINO subject consistency", "cos", "higher", "mean", "learned"),
    MetricInfo("clap_score", "CLAP text-audio score", "x100 cos", "higher", "mean", "learned"),
    MetricInfo("generation_seconds", "generation time", "s", "lower", "mean", "speed"),
)
METRICS = {info.key: info for info in CATALOGUE}
# Set-level metrics (one value per system), reported in the summary next to the per-item ones.
SET_METRICS = (MetricInfo("fvd", "FVD vs reference", "", "lower", "mean", "learned"),)
