"""Metric primitives: one-to-one event matching, and a per-clip score against the scene that was asked for.

These are plain functions on arrays, so they score ground-truth renders, decoded mp4 files and model
outputs alike.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from omni.toyworld.detectors.audio import Beep, detect_beeps
from omni.toyworld.detectors.motion import VisualBounce, classify_motion, motion_gap, visual_bounces
from omni.toyworld.detectors.segment import ObjectDetection
from omni.toyworld.detectors.shape import track_shape, track_size
from omni.toyworld.detectors.tracks import ColorTrack, track_objects
from omni.toyworld.render import shape_inside
from omni.toyworld.spec import BOUNCING_MOTIONS, ObjectSpec, SceneSpec

AV_MATCH_SECONDS = 0.1  # a beep and a visual bounce further apart than this are different events
TEMPLATE_SUPERSAMPLE = 4
TEMPLATE_SHIFTS = np.arange(-1.0, 1.01, 0.5)  # pixels tried around the centroid when placing a template
MIN_MOTION_SPREAD_PX = 2.0  # a track whose positions spread less than this did not move in any direction
MIN_STEP_PX = 0.5  # frame-to-frame displacements shorter than this have no direction worth measuring


@dataclass(frozen=True, eq=False)
class EventMatching:
    """A one-to-one matching of detected events to reference events.

    Attributes:
        pairs: (M, 2) int64 (reference index, detected index) of each matched pair.
        errors: (M,) float64 detected time minus reference time, per pair, in the inputs' unit.
        misses: reference events left unmatched.
        false_alarms: detected events left unmatched.
    """

    pairs: np.ndarray
    errors: np.ndarray
    misses: int
    false_alarms: int


def match_events(
    reference_times: np.ndarray, detected_times: np.ndarray, max_distance: float
) -> EventMatching:
    """Match events one to one, closest pairs first, never further apart than `max_distance`."""
    if not max_distance > 0:
        raise ValueError(f"max_distance must be positive, got {max_distance}")
    reference = np.asarray(reference_times, dtype=np.float64).reshape(-1)
    detected = np.asarray(detected_times, dtype=np.float64).reshape(-1)
    distance = np.abs(detected[None, :] - reference[:, None])  # (R, D)
    candidates = np.argwhere(distance <= max_distance)
    order = np.argsort(distance[candidates[:, 0], candidates[:, 1]], kind="stable")
    used_ref, used_det, pairs = set(), set(), []
    for r, d in candidates[order]:
        if r not in used_ref and d not in used_det:
            used_ref.add(r)
            used_det.add(d)
            pairs.append((r, d))
    pairs_array = np.array(sorted(pairs), dtype=np.int64).reshape(-1, 2)
    return EventMatching(
        pairs=pairs_array,
        errors=detected[pairs_array[:, 1]] - reference[pairs_array[:, 0]],
        misses=len(reference) - len(pairs),
        false_alarms=len(detected) - len(pairs),
    )


def chance_errors(
    reference_times: np.ndarray,
    detected_times: np.ndarray,
    duration: float,
    max_distance: float,
    shifts: int = 32,
    seed: int = 0,
) -> np.ndarray:
    """Matched errors of the same detected events moved by `shifts` random circular shifts in [0, duration):
    what `match_events` finds by chance at this number and spacing of events, with their timing unrelated to
    the reference. Many events land near some reference event by chance: an error median is only evidence of
    timing where it is well below this one's."""
    if not duration > 0:
        raise ValueError(f"duration must be positive, got {duration}")
    detected = np.asarray(detected_times, dtype=np.float64).reshape(-1)
    offsets = np.random.default_rng(seed).uniform(0.0, duration, shifts)
    parts = [match_events(reference_times, (detected + o) % duration, max_distance).errors for o in offsets]
    return np.concatenate(parts) if parts else np.zeros(0)


def score_clip(
    frames: np.ndarray, audio: np.ndarray | None, fps: float, sample_rate: int | None, expected: SceneSpec
) -> dict[str, Any]:
    """Detect objects, motions, bounces and beeps in a clip and compare them with the `expected` scene.

    Args:
        frames: (F, H, W, 3) uint8 RGB.
        audio: (N,) or (C, N) float in [-1, 1], or None for a silent clip (no beeps).
        fps, sample_rate: of `frames` and `audio`.
        expected: the scene the clip should show (e.g. the one whose canonical caption was the prompt).

    Returns a dict of plain values: per-object results under "objects", accuracies over the expected
    objects ("color_accuracy", "shape_accuracy", "size_accuracy", "motion_accuracy"; trajectories are
    not classified), "extra_objects", "pieces" (see `pieces`), audio-video sync ("av_sync_errors_ms":
    beep onset minus visual bounce for each matched pair of the same colour, "av_sync_median_abs_ms") and
    "pitch_color_agreement" (share of beeps near a visual bounce whose pitch names the bouncing
    object's colour). Undefined averages are NaN.
    """
    tracked = track_objects(frames, fps)
    beeps = [] if audio is None else detect_beeps(audio, sample_rate)
    frame_size = min(np.shape(frames)[1:3])
    bounces_of = {}
    objects = []
    for obj in expected.objects:
        track = tracked.tracks.get(obj.color)
        record: dict[str, Any] = {"color": obj.color, "color_found": track is not None}
        if track is None:
            record.update(
                shape=None, size=None, motion=None, visual_bounces=[], beeps=[], shape_iou=0.0, pieces=0.0
            )
            record["direction_error_deg"] = 90.0 if obj.motion in BOUNCING_MOTIONS else float("nan")
            record["motion_gap"] = float("nan")
            record.update(shape_correct=False, size_correct=False, motion_correct=False)
            objects.append(record)
            continue
        motion = classify_motion(track.times, track.motion_track, frame_size)
        # Only straight-line motions bounce; an orbit's smooth turns are not wall hits.
        bouncing = motion in BOUNCING_MOTIONS
        bounces_of[obj.color] = visual_bounces(track.times, track.motion_track) if bouncing else []
        record.update(
            shape=track_shape(track),
            size=track_size(track, frame_size),
            motion=motion,
            visual_bounces=[b.time for b in bounces_of[obj.color]],
            beeps=[b.time for b in beeps if b.color == obj.color],
        )
        record["shape_iou"] = shape_iou(tracked.detections, obj, expected.radius(obj))
        record["pieces"] = pieces(tracked.detections, obj.color)
        record["direction_error_deg"] = direction_error(track, obj)
        record["motion_gap"] = motion_gap(track.times, track.motion_track, obj.motion, frame_size)
        record["shape_correct"] = record["shape"] == obj.shape
        record["size_correct"] = record["size"] == obj.size
        record["motion_correct"] = None if obj.motion == "trajectory" else motion == obj.motion
        matching = match_events(record["visual_bounces"], record["beeps"], AV_MATCH_SECONDS)
        record["av_sync_errors_ms"] = (1000 * matching.errors).tolist()
        record["beep_misses"], record["beep_false_alarms"] = matching.misses, matching.false_alarms
        objects.append(record)
    sync = [e for record in objects for e in record.get("av_sync_errors_ms", [])]
    motions = [r["motion_correct"] for r in objects if r["motion_correct"] is not None]
    return {
        "objects": objects,
        "color_accuracy": _mean([r["color_found"] for r in objects]),
        "shape_accuracy": _mean([r["shape_correct"] for r in objects]),
        "size_accuracy": _mean([r["size_correct"] for r in objects]),
        "motion_accuracy": _mean(motions),
        "shape_iou": _mean([r["shape_iou"] for r in objects]),
        "pieces": _mean([r["pieces"] for r in objects]),
        "direction_error_deg": _mean(
            [r["direction_error_deg"] for r in objects if not np.isnan(r["direction_error_deg"])]
        ),
        "extra_objects": len(set(tracked.tracks) - {o.color for o in expected.objects}),
        "av_sync_errors_ms": sync,
        "av_sync_median_abs_ms": float(np.median(np.abs(sync))) if sync else float("nan"),
        "pitch_color_agreement": pitch_color_agreement(beeps, bounces_of),
    }


def shape_iou(detections: list[list[ObjectDetection]], obj: ObjectSpec, radius: float) -> float:
    """Median over frames of the IoU between the object's mask and the asked-for shape at the asked-for size,
    placed at the mask's centroid (best of a few sub-pixel shifts). Graded where the shape score is all or
    nothing: a blob of the right size scores about 0.8 against a square, a well-drawn square about 0.95.
    Frames where the object is cut by the border are left out; 0 when it is never found whole."""
    values = []
    for frame in detections:
        found = next((d for d in frame if d.color == obj.color), None)
        if found is None or found.touches_border:
            continue
        values.append(_template_iou(found.mask, obj.shape, radius, found.centroid))
    return float(np.median(values)) if values else 0.0


def pieces(detections: list[list[ObjectDetection]], color: str) -> float:
    """Median over frames of how many separate pieces of `color` a frame shows: 1 for one drawn object, more
    when the object falls apart into fragments (or is drawn several times), 0 when the colour is missing."""
    counts = [sum(d.color == color for d in frame) for frame in detections]
    return float(np.median(counts)) if counts else 0.0


def _template_iou(mask: np.ndarray, shape: str, radius: float, centroid: tuple[float, float]) -> float:
    height, width = mask.shape
    sub = (np.arange(TEMPLATE_SUPERSAMPLE) + 0.5) / TEMPLATE_SUPERSAMPLE
    xs = (np.arange(width)[:, None] + sub[None, :]).reshape(-1)  # (W * S,) sample x positions
    ys = (np.arange(height)[:, None] + sub[None, :]).reshape(-1)
    best = 0.0
    for dx in TEMPLATE_SHIFTS:
        for dy in TEMPLATE_SHIFTS:
            inside = shape_inside(
                shape, radius, xs[None, :] - centroid[0] - dx, ys[:, None] - centroid[1] - dy
            )
            coverage = inside.reshape(height, TEMPLATE_SUPERSAMPLE, width, TEMPLATE_SUPERSAMPLE).mean(
                axis=(1, 3)
            )
            template = coverage >= 0.5
            union = np.logical_or(template, mask).sum()
            best = max(best, float(np.logical_and(template, mask).sum() / max(union, 1)))
    return best


def direction_error(track: ColorTrack, obj: ObjectSpec) -> float:
    """Median degrees (0-90) between the object's frame-to-frame displacements and the asked-for bounce's
    axes (horizontal 0, vertical 90; a diagonal's velocity angle and its mirror image, since a wall hit
    flips one component); 90 when it did not move; NaN for motions without an axis (still, orbit, path)."""
    if obj.motion not in BOUNCING_MOTIONS:
        return float("nan")
    positions = track.motion_track[~np.isnan(track.motion_track[:, 0])]
    steps = np.diff(positions, axis=0)
    lengths = np.hypot(steps[:, 0], steps[:, 1]) if len(steps) else np.zeros(0)
    if len(positions) < 3 or np.ptp(positions, axis=0).max() < MIN_MOTION_SPREAD_PX:
        return 90.0
    steps = steps[lengths >= MIN_STEP_PX]
    if not len(steps):
        return 90.0
    moved = np.degrees(np.arctan2(steps[:, 1], steps[:, 0])) % 180
    asked = np.degrees(np.arctan2(obj.velocity[1], obj.velocity[0])) % 180
    errors = []
    for axis in {asked, (180 - asked) % 180}:
        difference = np.abs(moved - axis) % 180
        errors.append(np.minimum(difference, 180 - difference))
    return float(np.median(np.min(errors, axis=0)))


def pitch_color_agreement(beeps: list[Beep], bounces_of: dict[str, list[VisualBounce]]) -> float:
    """Share of beeps within AV_MATCH_SECONDS of a visual bounce whose pitch names that object's colour.

    Each beep is compared with the nearest bounce of any object; beeps with no bounce near are left out
    (they are sync failures, not pitch failures). NaN when no beep is near a bounce.
    """
    events = [(b.time, color) for color, found in bounces_of.items() for b in found]
    verdicts = []
    for beep in beeps:
        if not events:
            break
        time, color = min(events, key=lambda event: abs(event[0] - beep.time))
        if abs(time - beep.time) <= AV_MATCH_SECONDS:
            verdicts.append(beep.color == color)
    return _mean(verdicts)


def _mean(values: list[bool]) -> float:
    return float(np.mean(values)) if values else float("nan")
