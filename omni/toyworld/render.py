"""Vectorised, anti-aliased rendering of the toy world's frames and the exact object masks behind them.

Each object's coverage (the fraction of each pixel it covers) is computed by 4 x 4 supersampling in a
small patch around it, for all frames at once; the frame is the room's backdrop with every object
alpha-composited on top in order. Masks are the same coverage, so they match the pixels exactly.
"""

from __future__ import annotations

import math

import numpy as np

from omni.toyworld.motion import camera_offsets, frame_times, view_positions
from omni.toyworld.spec import RGB_OF_COLOR, RGB_OF_ROOM, ObjectSpec, SceneSpec, shape_extents

SUPERSAMPLE = 4
# Backdrop brightness swings (levels of 255): a diagonal ramp, plus soft waves for "texture" whose
# incommensurate periods give the camera motion a unique, trackable match.
GRADIENT_LEVELS = 20.0
TEXTURE_RAMP_LEVELS = 10.0
TEXTURE_WAVE_LEVELS = 14.0


def shape_inside(shape: str, radius: float, dx: np.ndarray, dy: np.ndarray) -> np.ndarray:
    """Bool: whether points at offset (dx, dy) from an object's position lie inside its shape."""
    if shape == "circle":
        return dx * dx + dy * dy <= radius * radius
    if shape == "square":
        return (np.abs(dx) <= radius) & (np.abs(dy) <= radius)
    # Upward triangle with its centroid at the origin: apex (0, -4r/3), base corners (+-r, 2r/3).
    return (dy <= 2 * radius / 3) & (np.abs(dx) <= (dy + 4 * radius / 3) / 2)


def object_coverage_frames(scene: SceneSpec, obj: ObjectSpec, times: np.ndarray | None = None) -> np.ndarray:
    """(T, H, W) float32 fraction of each pixel covered by `obj` at `times` (default: the frame times)."""
    times = frame_times(scene) if times is None else np.asarray(times, dtype=np.float64)
    radius = scene.radius(obj)
    left, _, up, _ = shape_extents(obj.shape, radius)
    centers = view_positions(scene, obj, times)  # (T, 2)
    side = math.ceil(2 * radius) + 1  # pixels a 2r-wide box can touch
    # Patch origins: the pixel holding the box's top-left corner, kept inside the frame.
    ox = np.clip(np.floor(centers[:, 0] - left).astype(np.int64), 0, scene.width - side)
    oy = np.clip(np.floor(centers[:, 1] - up).astype(np.int64), 0, scene.height - side)
    sub = (np.arange(side * SUPERSAMPLE) + 0.5) / SUPERSAMPLE  # sample offsets within the patch
    dx = (ox[:, None] + sub[None, :] - centers[:, :1])[:, None, :]  # (T, 1, S*4)
    dy = (oy[:, None] + sub[None, :] - centers[:, 1:])[:, :, None]  # (T, S*4, 1)
    inside = shape_inside(obj.shape, radius, dx, dy).astype(np.float32)  # (T, S*4, S*4)
    patch = inside.reshape(len(times), side, SUPERSAMPLE, side, SUPERSAMPLE).mean(axis=(2, 4))
    coverage = np.zeros((len(times), scene.height, scene.width), dtype=np.float32)
    t = np.arange(len(times))[:, None, None]
    rows = (oy[:, None] + np.arange(side))[:, :, None]
    cols = (ox[:, None] + np.arange(side))[:, None, :]
    coverage[t, rows, cols] = patch
    return coverage


def scene_coverage(scene: SceneSpec) -> np.ndarray:
    """(n_obj, F, H, W) float32 coverage of each object at every frame, ignoring occlusion."""
    return np.stack([object_coverage_frames(scene, obj) for obj in scene.objects])


def visible_coverage(coverage: np.ndarray) -> np.ndarray:
    """(n_obj, ...) coverage left visible after objects drawn later (higher index) cover earlier ones."""
    visible = coverage.copy()
    for index in range(len(coverage) - 1):
        visible[index] *= np.prod(1 - coverage[index + 1 :], axis=0)
    return visible


def object_masks(scene: SceneSpec, frame: int, visible_only: bool = True) -> np.ndarray:
    """(n_obj, H, W) bool: pixels at least half covered by each object at frame index `frame`.

    With `visible_only`, the parts hidden by objects drawn on top are removed, which is what a
    segmenter can see; otherwise each object's full silhouette.
    """
    if not 0 <= frame < scene.num_frames:
        raise ValueError(f"frame {frame} is out of range; the clip has frames 0..{scene.num_frames - 1}")
    times = frame_times(scene)[frame : frame + 1]
    coverage = np.stack([object_coverage_frames(scene, obj, times)[0] for obj in scene.objects])
    if visible_only:
        coverage = visible_coverage(coverage)
    return coverage >= 0.5


def backdrop(scene: SceneSpec) -> np.ndarray:
    """(F, H, W, 3) float32 room colour at every frame, in world coordinates so a pan moves it."""
    offsets = camera_offsets(scene, frame_times(scene))  # (F, 2)
    x = (np.arange(scene.width) + 0.5)[None, None, :] + offsets[:, 0, None, None]  # (F, 1, W)
    y = (np.arange(scene.height) + 0.5)[None, :, None] + offsets[:, 1, None, None]  # (F, H, 1)
    ramp = (x - scene.width / 2) / scene.width + (y - scene.height / 2) / scene.height  # about [-1, 1]
    if scene.backdrop == "flat":
        light = np.zeros_like(x + y)
    elif scene.backdrop == "gradient":
        light = GRADIENT_LEVELS * ramp
    else:
        waves = np.sin(2 * np.pi * (x / 29 + y / 53)) + np.sin(2 * np.pi * (y / 31 - x / 47) + 1.3)
        light = TEXTURE_RAMP_LEVELS * ramp + TEXTURE_WAVE_LEVELS * waves / 2
    base = np.asarray(RGB_OF_ROOM[scene.room], dtype=np.float32)
    return (base + light[..., None]).astype(np.float32)


def composite(scene: SceneSpec, coverage: np.ndarray) -> np.ndarray:
    """(F, H, W, 3) uint8 frames: the backdrop with each object's flat colour blended by its coverage."""
    canvas = backdrop(scene)
    for obj, alpha in zip(scene.objects, coverage):
        color = np.asarray(RGB_OF_COLOR[obj.color], dtype=np.float32)
        canvas += alpha[..., None] * (color - canvas)
    return np.clip(np.rint(canvas), 0, 255).astype(np.uint8)
