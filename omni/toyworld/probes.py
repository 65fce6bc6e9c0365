"""Readouts the probing tools (tools/control_use.py, tools/motion_use.py) take from a model's x_0 estimates.

At high noise a toy-world model's x_0 is no clean picture: the object is a spread of its colour, often in
several places. These readouts follow that colour wherever it is, where the evaluation's detectors (which
segment whole objects) would find nothing.
"""

from __future__ import annotations

import numpy as np

SATURATED = 120  # max - min channel of an object's pixel in the toy world (rooms stay under 32)
NEAR_COLOR = 120.0  # RGB distance at which a pixel no longer counts towards the object's colour


def object_colour(frames: np.ndarray) -> np.ndarray | None:
    """The mean RGB of a true clip's object pixels ((F, H, W, 3) uint8), or None if it shows no object."""
    pixels = frames.reshape(-1, 3).astype(float)
    pixels = pixels[pixels.max(-1) - pixels.min(-1) > SATURATED]
    return pixels.mean(0) if len(pixels) else None


def colour_centroids(frames: np.ndarray, colour: np.ndarray) -> np.ndarray:
    """(F, 2) (x, y) centroid of `colour` in each of (F, H, W, 3) frames, NaN where none of it shows.

    A pixel weighs (1 - RGB distance to `colour` / NEAR_COLOR)^2, so the centroid follows the colour
    wherever x_0 puts it, whole or spread.
    """
    rows, cols = np.mgrid[0 : frames.shape[1], 0 : frames.shape[2]] + 0.5
    distance = np.linalg.norm(frames.astype(float) - colour, axis=-1)
    weight = np.clip(1 - distance / NEAR_COLOR, 0, None) ** 2
    total = weight.sum((1, 2))
    with np.errstate(invalid="ignore", divide="ignore"):
        centroids = np.stack([(weight * cols).sum((1, 2)), (weight * rows).sum((1, 2))], -1) / total[:, None]
    centroids[total < 1e-6] = np.nan
    return centroids


def room_colour(frames: np.ndarray) -> np.ndarray:
    """The median RGB of a true clip's (F, H, W, 3) frames: its room, which covers most of every frame."""
    return np.median(frames.reshape(-1, 3), axis=0).astype(float)


def colour_share(frames: np.ndarray, colour: np.ndarray, room: np.ndarray) -> np.ndarray:
    """(F, H, W) share of `colour` in each pixel of (F, H, W, 3) frames, as a mix of `room` and `colour`: the
    pixel's projection onto the line from one to the other, clipped to [0, 1]. Linear, so the faint tint of
    an x_0 that averages over many places counts as much as it holds."""
    direction = np.asarray(colour, float) - room
    return np.clip((frames.astype(float) - room) @ direction / (direction @ direction), 0.0, 1.0)


def colour_extent(frames: np.ndarray, colour: np.ndarray, room: np.ndarray) -> np.ndarray:
    """(x, y) standard deviation (px) of where `colour` shows across all of (F, H, W, 3) frames at once, each
    pixel weighed by its `colour_share`; NaN where none of it shows.

    It does not ask when the colour is where: a model that spreads the object along the right axis but cannot
    tell one moment of the clip from another widens this, where the per-frame centroids stay put.
    """
    rows, cols = np.mgrid[0 : frames.shape[1], 0 : frames.shape[2]] + 0.5
    weight = colour_share(frames, colour, room).sum(0)
    total = weight.sum()
    if total < 1e-6:
        return np.full(2, np.nan)
    mean = np.array([(weight * cols).sum(), (weight * rows).sum()]) / total
    variance = (
        np.array([(weight * (cols - mean[0]) ** 2).sum(), (weight * (rows - mean[1]) ** 2).sum()]) / total
    )
    return np.sqrt(variance)
