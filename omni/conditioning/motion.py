"""Motion control: camera paths and subject trajectories, turned into per-token control maps.

Both are given per video frame in pixels and become `CONTROL_CHANNELS` maps on the video latent grid, which
the video expert embeds (zero-initialised) and adds to its tokens:

    0     camera given (1) or not (0)
    1-3   Plücker ray direction d of each latent cell's centre (pinhole camera, focal length = zoom x width)
    4-6   Plücker moment c x d (c: the camera centre, pan offset / width)
    7     trajectory given at this latent frame (1) or not (0)
    8-10  w, w * du, w * dv: a Gaussian bump around the subject's centre (w) and the sub-cell offset of the
          centre from each cell (du, dv in cells), so positions are resolved finer than one latent cell

Latent frame i of a causal video VAE summarises pixel frames up to 4i; its maps use pixel frame 4i.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from omni.conditioning.camera_presets import CAMERA_PRESETS
from omni.config import read_json

CONTROL_CHANNELS = 11
TRAJECTORY_SIGMA_CELLS = 1.0


@dataclass(frozen=True)
class CameraPath:
    """A 2D camera per video frame: offsets (F, 2) in pixels (view pixel p shows world point p + offset)
    and zoom (F,) (1 = the reference framing, 2 = twice as close)."""

    offsets: np.ndarray
    zoom: np.ndarray

    def __post_init__(self) -> None:
        if self.offsets.ndim != 2 or self.offsets.shape[1] != 2 or self.zoom.shape != self.offsets.shape[:1]:
            raise ValueError(
                f"camera path needs offsets (F, 2) and zoom (F,), got {self.offsets.shape} and {self.zoom.shape}"
            )
        if not (np.isfinite(self.offsets).all() and np.isfinite(self.zoom).all() and (self.zoom > 0).all()):
            raise ValueError("camera offsets must be finite and zoom finite and positive")

    @classmethod
    def preset(cls, name: str, num_frames: int, width: int, speed: float = 0.25) -> CameraPath:
        """A named move over the clip: pans travel `speed` x width in total; zooms end at 1 +- speed."""
        if name not in CAMERA_PRESETS:
            raise ValueError(
                f"unknown camera preset {name!r}; choose one of {list(CAMERA_PRESETS)} or give a JSON path"
            )
        progress = np.linspace(-0.5, 0.5, num_frames) if num_frames > 1 else np.zeros(1)
        offsets = np.zeros((num_frames, 2))
        zoom = np.ones(num_frames)
        axis, sign = {"pan-left": (0, -1), "pan-right": (0, 1), "pan-up": (1, -1), "pan-down": (1, 1)}.get(
            name, (0, 0)
        )
        if name.startswith("pan"):
            offsets[:, axis] = sign * speed * width * progress
        elif name == "zoom-in":
            zoom = 1 + speed * (progress + 0.5)
        elif name == "zoom-out":
            zoom = 1 + speed * (0.5 - progress)
        return cls(offsets, zoom)

    @classmethod
    def from_json(cls, path: str | Path, num_frames: int, fps: float) -> CameraPath:
        """{"keyframes": [[t_seconds, dx, dy, zoom], ...]} linearly interpolated over the clip's frames."""
        keys = _keyframes(path, _load_json(path), "keyframes", 4)
        times = np.arange(num_frames) / fps
        offsets = np.stack([np.interp(times, keys[:, 0], keys[:, i]) for i in (1, 2)], axis=1)
        return cls(offsets, np.interp(times, keys[:, 0], keys[:, 3]))


@dataclass(frozen=True)
class Trajectory:
    """A subject's centre (F, 2) in pixels per video frame; NaN rows where it is not constrained."""

    points: np.ndarray

    def __post_init__(self) -> None:
        if self.points.ndim != 2 or self.points.shape[1] != 2:
            raise ValueError(f"trajectory points must be (F, 2), got {self.points.shape}")
        given = ~np.isnan(self.points).any(1)
        if not given.any():
            raise ValueError("a trajectory needs at least one point")
        if not np.isfinite(self.points[given]).all():
            raise ValueError("trajectory points must be finite (or NaN where not given)")

    @classmethod
    def from_json(cls, path: str | Path, num_frames: int, fps: float) -> Trajectory:
        """{"points": [[t, x, y], ...]} or {"boxes": [[t, x0, y0, x1, y1], ...]} (box centres), in seconds
        and pixels, linearly interpolated between the first and the last given time."""
        data = _load_json(path)
        if "points" in data:
            keys = _keyframes(path, data, "points", 3)
        elif "boxes" in data:
            boxes = _keyframes(path, data, "boxes", 5)
            keys = np.stack(
                [boxes[:, 0], (boxes[:, 1] + boxes[:, 3]) / 2, (boxes[:, 2] + boxes[:, 4]) / 2], 1
            )
        else:
            raise ValueError(f"{path}: a trajectory file needs a 'points' or 'boxes' list")
        times = np.arange(num_frames) / fps
        points = np.stack([np.interp(times, keys[:, 0], keys[:, i]) for i in (1, 2)], axis=1)
        outside = (times < keys[0, 0] - 1e-9) | (times > keys[-1, 0] + 1e-9)
        points[outside] = np.nan
        return cls(points)


def _load_json(path: str | Path) -> dict:
    if not Path(path).is_file():  # "motion file not found: PATH", the message --camera/--trajectory users see
        raise FileNotFoundError(f"motion file not found: {path}")
    return read_json(path, "the motion file")


def _keyframes(path: str | Path, data: dict, key: str, width: int) -> np.ndarray:
    rows = data.get(key)
    try:
        keys = np.asarray(rows, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise ValueError(f"{path}: '{key}' must be a list of [{width} numbers] rows") from error
    if keys.ndim != 2 or keys.shape[1] != width or len(keys) == 0:
        raise ValueError(f"{path}: '{key}' must be a non-empty list of rows of {width} numbers")
    if not np.isfinite(keys).all():
        raise ValueError(f"{path}: '{key}' holds NaN or infinite values")
    if (np.diff(keys[:, 0]) <= 0).any():
        raise ValueError(f"{path}: '{key}' times must increase")
    return keys


def latent_frame_pixels(num_latent_frames: int, num_frames: int, temporal: int = 4) -> np.ndarray:
    """Pixel frame index each latent frame's maps are taken at (the newest frame it summarises)."""
    return np.minimum(np.arange(num_latent_frames) * temporal, num_frames - 1)


def control_maps(
    shape: tuple[int, int, int],
    frame_size: tuple[int, int],
    camera: CameraPath | None = None,
    trajectory: Trajectory | None = None,
    temporal: int = 4,
) -> Tensor:
    """(CONTROL_CHANNELS, F, h, w) float32 maps for a video latent grid `shape` = (F, h, w).

    `frame_size` = (height, width) in pixels; camera and trajectory are per pixel frame.
    """
    frames, rows, cols = shape
    height, width = frame_size
    maps = torch.zeros(CONTROL_CHANNELS, frames, rows, cols)
    cell = height / rows
    v, u = np.meshgrid((np.arange(rows) + 0.5) * cell, (np.arange(cols) + 0.5) * width / cols, indexing="ij")
    if camera is not None:
        picks = latent_frame_pixels(frames, len(camera.zoom), temporal)
        for i, p in enumerate(picks):
            focal = camera.zoom[p] * width
            d = np.stack([(u - width / 2) / focal, (v - height / 2) / focal, np.ones_like(u)])
            d = d / np.linalg.norm(d, axis=0, keepdims=True)
            c = np.array([camera.offsets[p, 0] / width, camera.offsets[p, 1] / width, 0.0])[:, None, None]
            m = np.cross(c, d, axis=0)
            maps[0, i] = 1.0
            maps[1:4, i] = torch.from_numpy(d).float()
            maps[4:7, i] = torch.from_numpy(m).float()
    if trajectory is not None:
        picks = latent_frame_pixels(frames, len(trajectory.points), temporal)
        for i, p in enumerate(picks):
            x, y = trajectory.points[p]
            if math.isnan(x) or math.isnan(y):
                continue
            du, dv = (x - u) / cell, (y - v) / cell
            weight = np.exp(-(du**2 + dv**2) / (2 * TRAJECTORY_SIGMA_CELLS**2))
            maps[7, i] = 1.0
            maps[8, i] = torch.from_numpy(weight).float()
            maps[9, i] = torch.from_numpy(weight * np.clip(du, -3, 3)).float()
            maps[10, i] = torch.from_numpy(weight * np.clip(dv, -3, 3)).float()
    return maps
