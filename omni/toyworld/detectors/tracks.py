"""Per-colour object tracks over a clip, in view and (camera-compensated) world coordinates.

The toy world gives every object in a scene its own colour, so a track is the largest object of one
colour in each frame. Shape and size are judged on the frames where the object is whole: not cut by
the frame's edge and not hidden by another object (its area near the track's largest).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from omni.toyworld.detectors.camera import estimate_camera_offsets
from omni.toyworld.detectors.segment import ObjectDetection, segment_frames

MIN_PRESENCE = 1 / 3  # share of frames a colour must appear in to count as an object
WHOLE_AREA_FRACTION = 0.85  # frames with at least this share of the track's top area show it whole
TOUCHING_AREA_FRACTION = 0.97  # ... or this share when it touches another object (which may hide it)
MIN_WHOLE_FRAMES = 6


@dataclass(frozen=True, eq=False)
class ColorTrack:
    """One object followed through F frames; NaN where it was not found.

    Attributes:
        color: the object's colour name.
        times: (F,) float64 seconds.
        centroids: (F, 2) float64 (x, y) in view pixels.
        world: (F, 2) float64 centroids plus the estimated camera offset (world coordinates up to a
            constant), where a panning camera's motion no longer shows.
        areas: (F,) float64 covered pixels.
        fill_ratios: (F,) float64 area over extent box (see ObjectDetection.fill_ratio).
        asymmetries, corner_ratios: (F,) float64 shape cues (see ObjectDetection).
        extents: (F, 2) float64 sub-pixel (width, height).
        whole: (F,) bool frames where the object is not cut by the border and shows at least
            WHOLE_AREA_FRACTION of its largest area (TOUCHING_AREA_FRACTION when it touches another
            object, which may hide part of it).
    """

    color: str
    times: np.ndarray
    centroids: np.ndarray
    world: np.ndarray
    areas: np.ndarray
    fill_ratios: np.ndarray
    asymmetries: np.ndarray
    corner_ratios: np.ndarray
    extents: np.ndarray
    whole: np.ndarray

    @property
    def present(self) -> np.ndarray:
        """(F,) bool frames where the object was found."""
        return ~np.isnan(self.centroids[:, 0])

    @property
    def motion_track(self) -> np.ndarray:
        """(F, 2) world positions for motion analysis: the whole frames only (NaN elsewhere), since a cut
        or partly hidden object's centroid is pulled off its centre; every found frame if too few are whole."""
        if self.whole.sum() < MIN_WHOLE_FRAMES:
            return self.world
        return np.where(self.whole[:, None], self.world, np.nan)


@dataclass(frozen=True, eq=False)
class TrackedClip:
    """Everything the video detectors found in one clip.

    Attributes:
        camera_offsets: (F, 2) float64 estimated camera offset relative to frame 0.
        tracks: colour name -> ColorTrack, for every colour present in enough frames.
        detections: per frame, every object found (largest first).
    """

    camera_offsets: np.ndarray
    tracks: dict[str, ColorTrack]
    detections: list[list[ObjectDetection]]


def track_objects(frames: np.ndarray, fps: float) -> TrackedClip:
    """Segment (F, H, W, 3) uint8 frames, follow each colour and undo the camera's pan."""
    if fps <= 0:
        raise ValueError(f"fps must be positive, got {fps}")
    detections = segment_frames(frames)
    num_frames = len(frames)
    exclude = np.zeros(np.shape(frames)[:3], dtype=bool)
    for f, found in enumerate(detections):
        for detection in found:
            exclude[f] |= detection.coverage > 0
    offsets = estimate_camera_offsets(frames, _grow(exclude, 2))
    times = np.arange(num_frames) / fps
    colors = sorted({d.color for found in detections for d in found})
    tracks = {}
    for color in colors:
        best = [next((d for d in found if d.color == color), None) for found in detections]
        if sum(d is not None for d in best) < MIN_PRESENCE * num_frames:
            continue
        tracks[color] = _track(color, best, times, offsets)
    return TrackedClip(camera_offsets=offsets, tracks=tracks, detections=detections)


def _track(
    color: str, best: list[ObjectDetection | None], times: np.ndarray, offsets: np.ndarray
) -> ColorTrack:
    nan2 = (np.nan, np.nan)
    centroids = np.array([d.centroid if d else nan2 for d in best], dtype=np.float64)
    areas = np.array([d.area if d else np.nan for d in best], dtype=np.float64)
    extents = np.array([d.extent if d else nan2 for d in best], dtype=np.float64)
    fill = np.array([d.fill_ratio if d else np.nan for d in best], dtype=np.float64)
    asymmetries = np.array([d.asymmetry if d else np.nan for d in best], dtype=np.float64)
    corners = np.array([d.corner_ratio if d else np.nan for d in best], dtype=np.float64)
    cut = np.array([d.touches_border if d else True for d in best])
    touching = np.array([d.touches_other if d else False for d in best])
    top_area = np.nanmax(np.where(cut, np.nan, areas)) if not cut.all() else np.nanmax(areas)
    share = np.nan_to_num(areas) / top_area
    whole = ~cut & (share >= np.where(touching, TOUCHING_AREA_FRACTION, WHOLE_AREA_FRACTION))
    return ColorTrack(
        color=color,
        times=times,
        centroids=centroids,
        world=centroids + offsets,
        areas=areas,
        fill_ratios=fill,
        asymmetries=asymmetries,
        corner_ratios=corners,
        extents=extents,
        whole=whole,
    )


def _grow(mask: np.ndarray, pixels: int) -> np.ndarray:
    """Dilate each (H, W) image of a (..., H, W) bool mask by `pixels` (square neighbourhood)."""
    out = mask.copy()
    for _ in range(pixels):
        grown = out.copy()
        grown[..., 1:, :] |= out[..., :-1, :]
        grown[..., :-1, :] |= out[..., 1:, :]
        grown[..., :, 1:] |= out[..., :, :-1]
        grown[..., :, :-1] |= out[..., :, 1:]
        out = grown
    return out
