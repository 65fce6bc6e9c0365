"""Motion class and wall-bounce times from an object's centroid track.

Work on the camera-compensated (world) track, so a pan neither makes a still object look like it moves
nor hides a reversal. A bounce is a reversal of velocity along x or y; its time is refined below the
frame rate by intersecting straight-line fits to the frames before and after it (exact for the toy
world's piecewise-linear motion, up to centroid noise).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

STILL_FRACTION = 0.05  # a track spanning less than this share of the frame is "still"
AXIS_RATIO = 0.25  # a track whose shorter span is below this share of its longer one moves along one axis
ORBIT_MAX_RESIDUAL = 0.05  # RMS distance from the fitted circle over its radius (orbits <= 0.03,
# bouncing tracks mostly >= 0.07 even through H.264)
ORBIT_MIN_SWEEP = np.pi  # radians swept around the fitted centre
ORBIT_MIN_TURN_RATE = 1.2  # median signed heading change, radians per second (orbits >= 2.4)
MIN_STEP_PX = 0.3  # frame-to-frame moves smaller than this count as no move (noise)
FIT_FRAMES = 6  # at most this many frames on each side feed the line fits


@dataclass(frozen=True)
class VisualBounce:
    """A reversal seen in the track: `time` in seconds, `axis` "x" or "y", `wall` the side it hit."""

    time: float
    axis: str
    wall: str


def classify_motion(times: np.ndarray, positions: np.ndarray, frame_size: int) -> str:
    """One of "still", "horizontal", "vertical", "diagonal", "orbit" for a (F, 2) track (NaN = missing)."""
    all_times, all_positions = np.asarray(times, dtype=np.float64), np.asarray(positions, dtype=np.float64)
    times, positions = _valid(all_times, all_positions)
    if len(times) < 3:
        raise ValueError(f"a track needs at least 3 frames with the object found, got {len(times)}")
    spans = _spans(positions)
    if spans.max() < STILL_FRACTION * frame_size:
        return "still"
    if _is_orbit(all_times, all_positions):
        return "orbit"
    if spans.min() < AXIS_RATIO * spans.max():
        return "horizontal" if spans[0] > spans[1] else "vertical"
    return "diagonal"


def motion_gap(times: np.ndarray, positions: np.ndarray, asked: str, frame_size: int) -> float:
    """How far a (F, 2) track (NaN = missing) is from `asked`'s own test in `classify_motion`, graded where the
    class is all or nothing: the deciding quantity over its threshold, so below 1 passes that test.

    still: the longer span over STILL_FRACTION of the frame; horizontal / vertical: the span across the axis
    over AXIS_RATIO of the span along it; orbit: the RMS distance from the fitted circle over
    ORBIT_MAX_RESIDUAL of its radius (the sweep and turn tests are not graded). NaN for other motions
    and for tracks with fewer than 3 frames found."""
    _, valid = _valid(times, positions)
    if asked not in ("still", "horizontal", "vertical", "orbit") or len(valid) < 3:
        return float("nan")
    spans = _spans(valid)
    if asked == "still":
        return float(spans.max() / (STILL_FRACTION * frame_size))
    if asked in ("horizontal", "vertical"):
        along, across = (spans[0], spans[1]) if asked == "horizontal" else (spans[1], spans[0])
        return float(across / max(AXIS_RATIO * along, 1e-6))
    _, radius, residual = fit_circle(valid)
    return float(residual / (ORBIT_MAX_RESIDUAL * radius)) if np.isfinite(radius) else float("inf")


def _spans(positions: np.ndarray) -> np.ndarray:
    """(2,) extent of (N, 2) found positions along x and y, 2nd to 98th percentile (a stray frame is ignored)."""
    return np.percentile(positions, 98, axis=0) - np.percentile(positions, 2, axis=0)


def _valid(times: np.ndarray, positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    times, positions = np.asarray(times, dtype=np.float64), np.asarray(positions, dtype=np.float64)
    if positions.ndim != 2 or positions.shape != (len(times), 2):
        raise ValueError(f"positions must be (F, 2) for {len(times)} times, got shape {positions.shape}")
    keep = np.isfinite(positions).all(axis=1)
    return times[keep], positions[keep]


def _is_orbit(times: np.ndarray, positions: np.ndarray) -> bool:
    """A circle fits the track closely, the object sweeps around its centre and keeps turning.

    A bouncing track's straight runs turn only at the bounces, so the median turn per frame step is
    near zero; on a circle every step turns by the angular speed over the frame rate.
    """
    valid_times, valid = _valid(times, positions)
    center, radius, residual = fit_circle(valid)
    if not np.isfinite(radius) or residual > ORBIT_MAX_RESIDUAL * radius:
        return False
    angles = np.unwrap(np.arctan2(valid[:, 1] - center[1], valid[:, 0] - center[0]))
    if abs(angles[-1] - angles[0]) < ORBIT_MIN_SWEEP:
        return False
    steps = np.diff(positions, axis=0)  # NaN where either frame is missing
    heading = np.arctan2(steps[:, 1], steps[:, 0])
    turns = np.angle(np.exp(1j * np.diff(heading))) / np.diff(times)[1:]
    turns = turns[np.isfinite(turns)]
    return turns.size >= 3 and abs(float(np.median(turns))) > ORBIT_MIN_TURN_RATE


def fit_circle(points: np.ndarray) -> tuple[np.ndarray, float, float]:
    """Least-squares (Kasa) circle through (N, 2) points: centre (2,), radius, RMS radial residual."""
    x, y = points[:, 0], points[:, 1]
    design = np.stack([x, y, np.ones_like(x)], axis=1)
    solution, *_ = np.linalg.lstsq(design, x * x + y * y, rcond=None)
    center = solution[:2] / 2
    radius_sq = solution[2] + center @ center
    if radius_sq <= 0:
        return center, float("nan"), float("inf")
    radius = float(np.sqrt(radius_sq))
    residual = float(np.sqrt(np.mean((np.hypot(x - center[0], y - center[1]) - radius) ** 2)))
    return center, radius, residual


def visual_bounces(times: np.ndarray, positions: np.ndarray) -> list[VisualBounce]:
    """Every velocity reversal along x or y in a (F, 2) track (NaN = missing), sorted by time.

    Meant for straight-line (bouncing) motion: on an orbit the smooth turns also reverse x and y, and
    those are not wall hits, so classify the motion first.
    """
    times, positions = _valid(times, positions)
    found = []
    for axis, walls in ((0, ("left", "right")), (1, ("top", "bottom"))):
        found += [
            VisualBounce(time=t, axis="xy"[axis], wall=walls[int(before > 0)])
            for t, before in _reversals(times, positions[:, axis])
        ]
    return sorted(found, key=lambda b: b.time)


def _reversals(times: np.ndarray, values: np.ndarray) -> list[tuple[float, float]]:
    """(time, sign of the velocity before) of each reversal in a 1-D track."""
    steps = np.diff(values)
    signs = np.where(np.abs(steps) >= MIN_STEP_PX, np.sign(steps), 0.0)
    moving = np.flatnonzero(signs)
    # Runs of equal sign among the moving steps: [start, end] indices into `steps`.
    breaks = np.flatnonzero(np.diff(signs[moving]) != 0)
    starts = np.concatenate([[moving[0]], moving[breaks + 1]]) if moving.size else np.array([], int)
    ends = np.concatenate([moving[breaks], [moving[-1]]]) if moving.size else np.array([], int)
    reversals = []
    for k in range(len(starts) - 1):
        # Step j spans frames j..j+1. The reversal lies after frame ends[k] and before frame starts[k+1] + 1;
        # the first frame of a run may still precede the previous reversal, so it is used only for run 0.
        before = np.arange(max(starts[k] + (k > 0), ends[k] - FIT_FRAMES + 1), ends[k] + 1)
        after_end = ends[k + 1] if k + 1 < len(starts) - 1 else ends[k + 1] + 1
        after = np.arange(starts[k + 1] + 1, min(after_end, starts[k + 1] + FIT_FRAMES) + 1)
        time = _kink_time(times, values, before, after)
        if time is not None:
            reversals.append((time, float(signs[ends[k]])))
    return reversals


def _kink_time(times: np.ndarray, values: np.ndarray, before: np.ndarray, after: np.ndarray) -> float | None:
    """Where the line through the frames `before` meets the line through the frames `after`.

    With a single frame on one side, that side's slope mirrors the other's (an elastic bounce).
    """
    if len(before) + len(after) < 3 or len(before) == 0 or len(after) == 0:
        return None
    lines = [np.polyfit(times[idx], values[idx], 1) if len(idx) >= 2 else None for idx in (before, after)]
    if lines[0] is None:
        lines[0] = np.array([-lines[1][0], values[before[0]] + lines[1][0] * times[before[0]]])
    if lines[1] is None:
        lines[1] = np.array([-lines[0][0], values[after[0]] + lines[0][0] * times[after[0]]])
    (slope_a, icpt_a), (slope_b, icpt_b) = lines
    if slope_a == slope_b:
        return None
    time = (icpt_b - icpt_a) / (slope_a - slope_b)
    frame = np.median(np.diff(times))
    if not times[before[-1]] - frame <= time <= times[after[0]] + frame:
        return None
    return float(time)
