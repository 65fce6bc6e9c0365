"""Exact kinematics: where each object is at any real time, when it hits a wall, where the camera looks.

Bouncing is piecewise-linear motion reflected at the arena walls (the shape's edge touches the wall),
computed in closed form by unfolding the reflections, so bounce times are exact real numbers rather
than frame times.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from omni.toyworld.spec import ObjectSpec, SceneSpec, shape_extents


@dataclass(frozen=True)
class Bounce:
    """One wall hit: `time` in seconds, `wall` one of WALLS ("left", "right", "top", "bottom")."""

    time: float
    wall: str


def frame_times(scene: SceneSpec) -> np.ndarray:
    """(F,) float64 seconds of each video frame: i / fps."""
    return np.arange(scene.num_frames) / scene.fps


def camera_offsets(scene: SceneSpec, times: np.ndarray) -> np.ndarray:
    """(T, 2) float64 camera offset (dx, dy) at `times`: a view pixel p shows world point p + offset."""
    last = (scene.num_frames - 1) / scene.fps
    progress = np.asarray(times, dtype=np.float64) / last - 0.5 if last > 0 else np.zeros(np.shape(times))
    return progress[:, None] * np.asarray(scene.pan, dtype=np.float64)[None, :]


def travel_limits(scene: SceneSpec, obj: ObjectSpec) -> tuple[float, float, float, float]:
    """(lo_x, hi_x, lo_y, hi_y): the range of the object's position that keeps its shape in the arena."""
    left, right, up, down = shape_extents(obj.shape, scene.radius(obj))
    x0, y0, x1, y1 = scene.arena()
    return (x0 + left, x1 - right, y0 + up, y1 - down)


def world_positions(scene: SceneSpec, obj: ObjectSpec, times: np.ndarray) -> np.ndarray:
    """(T, 2) float64 world position (x, y) of `obj` at `times` in seconds."""
    t = np.asarray(times, dtype=np.float64)
    x0, y0 = obj.position
    if obj.motion == "orbit":
        angle = obj.phase + obj.angular_speed * t
        return np.stack([x0 + obj.orbit_radius * np.cos(angle), y0 + obj.orbit_radius * np.sin(angle)], -1)
    if obj.motion == "trajectory":
        kt, kx, ky = (np.array(column, dtype=np.float64) for column in zip(*obj.keypoints))
        return np.stack([np.interp(t, kt, kx), np.interp(t, kt, ky)], -1)
    lo_x, hi_x, lo_y, hi_y = travel_limits(scene, obj)
    vx, vy = obj.velocity
    return np.stack([_reflect(x0, vx, lo_x, hi_x, t), _reflect(y0, vy, lo_y, hi_y, t)], -1)


def view_positions(scene: SceneSpec, obj: ObjectSpec, times: np.ndarray) -> np.ndarray:
    """(T, 2) float64 position of `obj` in view pixels (world position minus camera offset)."""
    return world_positions(scene, obj, times) - camera_offsets(scene, times)


def bounces(scene: SceneSpec, obj: ObjectSpec) -> tuple[Bounce, ...]:
    """Every wall hit of `obj` in (0, duration), sorted by time; only the bouncing motions hit walls."""
    lo_x, hi_x, lo_y, hi_y = travel_limits(scene, obj)
    events = [
        *_wall_hits(obj.position[0], obj.velocity[0], lo_x, hi_x, scene.duration_seconds, ("left", "right")),
        *_wall_hits(obj.position[1], obj.velocity[1], lo_y, hi_y, scene.duration_seconds, ("top", "bottom")),
    ]
    return tuple(sorted(events, key=lambda b: b.time))


def _reflect(p0: float, v: float, lo: float, hi: float, t: np.ndarray) -> np.ndarray:
    """Position of a point moving at speed v from p0, reflected between lo and hi (a triangle wave)."""
    span = hi - lo
    if v == 0 or span <= 0:
        return np.full_like(t, p0)
    folded = np.mod(p0 - lo + v * t, 2 * span)
    return lo + np.where(folded <= span, folded, 2 * span - folded)


def _wall_hits(
    p0: float, v: float, lo: float, hi: float, duration: float, names: tuple[str, str]
) -> list[Bounce]:
    """Times in (0, duration) where the unfolded coordinate p0 - lo + v t crosses a multiple of the span."""
    span = hi - lo
    if v == 0 or span <= 0:
        return []
    start, end = p0 - lo, p0 - lo + v * duration
    k_first, k_last = np.floor(min(start, end) / span) + 1, np.ceil(max(start, end) / span) - 1
    hits = []
    for k in range(int(k_first), int(k_last) + 1):
        time = (k * span - start) / v
        if 0 < time < duration:
            # Even multiples of the span are the low wall, odd ones the high wall.
            hits.append(Bounce(time=float(time), wall=names[k % 2]))
    return hits
