"""Camera pan estimation from the room's backdrop, so object motion can be measured in world coordinates.

Each frame's brightness is matched to the first frame's under a global translation by Gauss-Newton
(Lucas-Kanade), ignoring object pixels. A backdrop without 2-D texture (flat, or a plain ramp) cannot
show a pan; then the camera is reported still. So is a match that fails: one that leaves less than
MIN_OVERLAP of the frame to compare, or a shift of more than a pixel that matches the backdrop no better
than no shift (a generated backdrop with faint, changing texture can send Gauss-Newton off the frame, and
the pan it then reports, hundreds of pixels, would be read as the objects' motion).
"""

from __future__ import annotations

import numpy as np

LUMA_WEIGHTS = np.array([0.299, 0.587, 0.114], dtype=np.float32)
MIN_TEXTURE = 0.5  # smallest eigenvalue of the mean gradient outer product (levels^2 / px^2): the
# toy texture gives about 1.5, a flat or ramp backdrop under H.264 noise at most 0.2
MARGIN = 2  # pixels at the frame edge left out of the match (shifted content enters there)
MAX_ITERATIONS = 20
MIN_OVERLAP = 0.5  # share of the frame's inner pixels a shift must leave to compare
MAX_RESIDUAL_RATIO = 0.5  # a shift of more than a pixel must halve the still camera's squared mismatch


def estimate_camera_offsets(frames: np.ndarray, exclude: np.ndarray | None = None) -> np.ndarray:
    """(F, 2) float64 camera offset (dx, dy) of each frame relative to frame 0, in pixels.

    Args:
        frames: (F, H, W, 3) uint8 RGB.
        exclude: optional (F, H, W) bool pixels to ignore in each frame (the moving objects).

    A view pixel p of frame i shows what frame 0 showed at p + offset[i], matching the ground truth's
    camera offsets minus the first one.
    """
    luma = np.asarray(frames, dtype=np.float32) @ LUMA_WEIGHTS  # (F, H, W)
    num_frames, height, width = luma.shape
    exclude = np.zeros(luma.shape, dtype=bool) if exclude is None else np.asarray(exclude, dtype=bool)
    grad_y, grad_x = np.gradient(luma[0])
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float64)
    inner = np.zeros((height, width), dtype=bool)
    inner[MARGIN : height - MARGIN, MARGIN : width - MARGIN] = True
    texture = _min_eigenvalue(grad_x[inner & ~exclude[0]], grad_y[inner & ~exclude[0]])
    offsets = np.zeros((num_frames, 2), dtype=np.float64)
    if texture < MIN_TEXTURE:
        return offsets
    for i in range(1, num_frames):
        # Start from a constant-velocity guess: pans are smooth, so Gauss-Newton needs few steps.
        shift = 2 * offsets[i - 1] - offsets[i - 2] if i >= 2 else offsets[i - 1].copy()
        usable = inner & ~exclude[i]
        for _ in range(MAX_ITERATIONS):
            sx, sy, valid = _overlap(shift, usable, exclude[0], xs, ys)
            gx, gy = _bilinear(grad_x, sx, sy)[valid], _bilinear(grad_y, sx, sy)[valid]
            residual = (luma[i] - _bilinear(luma[0], sx, sy))[valid]
            normal = np.array([[gx @ gx, gx @ gy], [gx @ gy, gy @ gy]])
            step = np.linalg.solve(normal + 1e-6 * np.eye(2), np.array([gx @ residual, gy @ residual]))
            shift = shift + step
            if np.abs(step).max() < 1e-3:
                break
        if not _matches(luma[0], luma[i], shift, usable, exclude[0], xs, ys):
            return np.zeros((num_frames, 2), dtype=np.float64)
        offsets[i] = shift
    return offsets


def _matches(
    first: np.ndarray,
    frame: np.ndarray,
    shift: np.ndarray,
    usable: np.ndarray,
    excluded_first: np.ndarray,
    xs: np.ndarray,
    ys: np.ndarray,
) -> bool:
    """Whether `frame` shows `first` moved by `shift`: enough of the frame overlaps, and a shift of more
    than a pixel explains the backdrop clearly better than a still camera."""
    sx, sy, valid = _overlap(shift, usable, excluded_first, xs, ys)
    if valid.sum() < MIN_OVERLAP * usable.sum():
        return False
    if np.abs(shift).max() <= 1.0:
        return True
    moved = np.mean((frame - _bilinear(first, sx, sy))[valid] ** 2)
    still = np.mean((frame - first)[valid] ** 2)
    return bool(moved <= MAX_RESIDUAL_RATIO * still)


def _overlap(
    shift: np.ndarray, usable: np.ndarray, excluded_first: np.ndarray, xs: np.ndarray, ys: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Where each pixel of a frame lies in frame 0 under `shift` (sx, sy), and which `usable` pixels can be
    compared there: inside frame 0 and not on an object of frame 0."""
    height, width = usable.shape
    sx, sy = xs + shift[0], ys + shift[1]
    valid = usable & (sx >= 0) & (sx <= width - 1) & (sy >= 0) & (sy <= height - 1)
    return sx, sy, valid & ~_nearest(excluded_first, sx, sy)


def _min_eigenvalue(gx: np.ndarray, gy: np.ndarray) -> float:
    """Smallest eigenvalue of the mean structure tensor: how well a 2-D shift is pinned down."""
    if gx.size == 0:
        return 0.0
    tensor = np.array([[np.mean(gx * gx), np.mean(gx * gy)], [np.mean(gx * gy), np.mean(gy * gy)]])
    return float(np.linalg.eigvalsh(tensor)[0])


def _bilinear(image: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """`image` sampled at pixel-index coordinates (x, y), clamped to the frame."""
    height, width = image.shape
    x = np.clip(x, 0, width - 1)
    y = np.clip(y, 0, height - 1)
    x0 = np.minimum(np.floor(x).astype(np.int64), width - 2)
    y0 = np.minimum(np.floor(y).astype(np.int64), height - 2)
    fx, fy = x - x0, y - y0
    top = image[y0, x0] * (1 - fx) + image[y0, x0 + 1] * fx
    bottom = image[y0 + 1, x0] * (1 - fx) + image[y0 + 1, x0 + 1] * fx
    return top * (1 - fy) + bottom * fy


def _nearest(mask: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    height, width = mask.shape
    return mask[
        np.clip(np.rint(y).astype(np.int64), 0, height - 1),
        np.clip(np.rint(x).astype(np.int64), 0, width - 1),
    ]
