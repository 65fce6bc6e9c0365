"""Per-clip ground truth: where every object is in every frame, when it hits walls, what it sounds like.

Masks are not stored: `render.object_masks(scene, frame)` rebuilds them exactly from the scene.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from omni.toyworld.motion import Bounce, bounces, camera_offsets, frame_times, view_positions
from omni.toyworld.render import visible_coverage
from omni.toyworld.spec import SceneSpec, shape_extents


@dataclass(frozen=True, eq=False)
class ObjectTruth:
    """One object's ground truth over the clip (F frames), in view pixels.

    Attributes:
        color, shape: the object's identity, as in its ObjectSpec.
        centers: (F, 2) float64 (x, y) centroid of the full shape (equal to its position).
        bboxes: (F, 4) float64 exact (x0, y0, x1, y1) extent of the shape.
        visible_fraction: (F,) float32 share of the shape's area not hidden by objects drawn on top.
        bounces: wall hits in seconds, exact; the audio beeps start at these times.
        pitch_hz: the beep's fundamental frequency.
    """

    color: str
    shape: str
    centers: np.ndarray
    bboxes: np.ndarray
    visible_fraction: np.ndarray
    bounces: tuple[Bounce, ...]
    pitch_hz: float

    @property
    def visible(self) -> np.ndarray:
        """(F,) bool: whether any of the object shows in each frame."""
        return self.visible_fraction > 0

    @property
    def bounce_times(self) -> np.ndarray:
        return np.array([b.time for b in self.bounces], dtype=np.float64)


@dataclass(frozen=True, eq=False)
class GroundTruth:
    """Ground truth of one clip.

    Attributes:
        frame_times: (F,) float64 seconds of each frame.
        camera_offsets: (F, 2) float64 camera offset (dx, dy): view pixel p shows world point p + offset.
        objects: one ObjectTruth per object, in the scene's drawing order.
    """

    frame_times: np.ndarray
    camera_offsets: np.ndarray
    objects: tuple[ObjectTruth, ...]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready values (positions rounded to 1e-4 px; bounce times kept exact)."""
        return {
            "frame_times": _rounded(self.frame_times, 6),
            "camera_offsets": _rounded(self.camera_offsets, 4),
            "objects": [
                {
                    "color": o.color,
                    "shape": o.shape,
                    "pitch_hz": o.pitch_hz,
                    "centers": _rounded(o.centers, 4),
                    "bboxes": _rounded(o.bboxes, 4),
                    "visible": o.visible.tolist(),
                    "visible_fraction": _rounded(o.visible_fraction, 4),
                    "bounces": [{"time": b.time, "wall": b.wall} for b in o.bounces],
                }
                for o in self.objects
            ],
        }


def _rounded(values: np.ndarray, decimals: int) -> list[Any]:
    return np.round(np.asarray(values, dtype=np.float64), decimals).tolist()


def build_ground_truth(scene: SceneSpec, coverage: np.ndarray) -> GroundTruth:
    """Ground truth from the scene's exact geometry; `coverage` (n_obj, F, H, W) gives the occlusion."""
    times = frame_times(scene)
    visible = visible_coverage(coverage)
    areas = coverage.sum(axis=(2, 3))
    shown = np.divide(visible.sum(axis=(2, 3)), areas, out=np.zeros_like(areas), where=areas > 0)
    objects = []
    for index, obj in enumerate(scene.objects):
        centers = view_positions(scene, obj, times)
        left, right, up, down = shape_extents(obj.shape, scene.radius(obj))
        bboxes = centers[:, [0, 1, 0, 1]] + np.array([-left, -up, right, down])
        objects.append(
            ObjectTruth(
                color=obj.color,
                shape=obj.shape,
                centers=centers,
                bboxes=bboxes,
                visible_fraction=shown[index].astype(np.float32),
                bounces=bounces(scene, obj),
                pitch_hz=obj.pitch_hz,
            )
        )
    return GroundTruth(frame_times=times, camera_offsets=camera_offsets(scene, times), objects=tuple(objects))
