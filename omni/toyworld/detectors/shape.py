"""Shape and size classification from an object's silhouette.

A triangle is the only shape without point symmetry, so its third cumulant (`asymmetry`) is large;
a square's corners make its fourth cumulant along the axes twice that along the diagonals
(`corner_ratio` 2, or 1/2 when turned 45 degrees) where a circle's is the same in every direction.
Both cues are blur-invariant (see ObjectDetection); on the toy world, clean or through H.264, the
per-frame values sit far from the thresholds (asymmetry: triangles >= 0.009, others <= 0.007;
corner ratio: squares >= 1.57, circles <= 1.41 at the 5th / 95th percentiles).
"""

from __future__ import annotations

import numpy as np

from omni.toyworld.detectors.tracks import ColorTrack
from omni.toyworld.spec import RADIUS_FRACTION_OF_SIZE

TRIANGLE_ASYMMETRY = 0.008  # the toy triangle measures 0.021, point-symmetric shapes 0
SQUARE_CORNER_RATIO = 1.5  # squares measure 2 (or 1/2), circles 1
# Midpoint between the small and large diameters, as a fraction of the frame's shorter side.
LARGE_ABOVE = RADIUS_FRACTION_OF_SIZE["small"] + RADIUS_FRACTION_OF_SIZE["large"]


def classify_shape(asymmetry: float, corner_ratio: float) -> str:
    """ "triangle", "square" or "circle" from the cumulant cues of ObjectDetection."""
    if not np.isfinite(asymmetry) or asymmetry < 0:
        raise ValueError(f"asymmetry must be a finite number >= 0, got {asymmetry}")
    if asymmetry > TRIANGLE_ASYMMETRY:
        return "triangle"
    if (
        np.isfinite(corner_ratio)
        and corner_ratio > 0
        and abs(np.log(corner_ratio)) > np.log(SQUARE_CORNER_RATIO)
    ):
        return "square"
    return "circle"


def classify_size(diameter: float, frame_size: int) -> str:
    """ "small" or "large" from the object's larger extent in pixels and the frame's shorter side."""
    if frame_size <= 0:
        raise ValueError(f"frame_size must be positive, got {frame_size}")
    return "large" if diameter > LARGE_ABOVE * frame_size else "small"


def track_shape(track: ColorTrack) -> str | None:
    """The shape of a tracked object, from the median cues over the frames showing it whole."""
    frames = track.whole if track.whole.any() else track.present
    if not frames.any():
        return None
    # The median of log corner ratios keeps a square's 2 and 1/2 (turned) on the same side of 1.
    corner = float(np.exp(np.nanmedian(np.abs(np.log(track.corner_ratios[frames])))))
    return classify_shape(float(np.median(track.asymmetries[frames])), corner)


def track_size(track: ColorTrack, frame_size: int) -> str | None:
    """The size class of a tracked object, from the median larger extent over the whole frames."""
    frames = track.whole if track.whole.any() else track.present
    if not frames.any():
        return None
    return classify_size(float(np.median(track.extents[frames].max(axis=1))), frame_size)
