"""Colour segmentation of toy-world objects: saturated shapes against a low-saturation room.

A pixel's chroma (max - min of RGB) is near zero on the room and high on an object, and a blend of the
two has chroma in proportion to how much of the pixel the object covers; so chroma gives both the
mask and an anti-aliased coverage estimate. The hue names the colour (the palette's hues are 60
degrees apart). Both survive H.264's 4:2:0 chroma subsampling and compression noise, which blur the
chroma edge by about a pixel but do not move it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from omni.toyworld.spec import COLORS, HUE_OF_COLOR

MIN_CONTRAST = 50.0  # chroma levels above the room's for a pixel to be an object candidate
MIN_AREA = 6.0  # smallest object, in covered pixels; smaller specks are noise
HUE_STEP = 60.0
COLOR_AT_HUE_STEP = {round(HUE_OF_COLOR[c] / HUE_STEP) % len(COLORS): c for c in COLORS}


@dataclass(frozen=True, eq=False)
class ObjectDetection:
    """One coloured object found in one frame.

    Attributes:
        color: the palette colour whose hue is nearest (one of COLORS).
        mask: (H, W) bool pixels at least half covered by the object.
        coverage: (H, W) float32 estimated fraction of each pixel the object covers (0 elsewhere).
        centroid: coverage-weighted (x, y) in pixels; pixel (row i, col j) has its centre at (j + .5, i + .5).
        area: coverage sum in pixels.
        bbox: (x0, y0, x1, y1) integer bounds of `mask`, x1 and y1 exclusive.
        extent: (width, height) sub-pixel size: per column (row), the largest coverage, summed.
        asymmetry: |third central moment vector| / area^1.5 of the coverage: about 0.021 for the toy
            world's triangle, 0 for point-symmetric shapes (circle, square).
        corner_ratio: fourth cumulant along the axes over that along the diagonals: 2 for an upright
            square, 1/2 for one turned 45 degrees, 1 for a circle.
        touches_border: whether the mask reaches the frame's edge (the object may be cut off).
        touches_other: whether it borders another detected object (one may hide part of the other).

    Shape cues come from cumulants of the coverage because a symmetric blur (H.264's chroma
    subsampling, anti-aliasing) adds to the second cumulant only: the third and fourth stay put, while
    ratios such as `fill_ratio` drift with blur on objects a dozen pixels wide.
    """

    color: str
    mask: np.ndarray
    coverage: np.ndarray
    centroid: tuple[float, float]
    area: float
    bbox: tuple[int, int, int, int]
    extent: tuple[float, float]
    asymmetry: float
    corner_ratio: float
    touches_border: bool
    touches_other: bool = False

    @property
    def fill_ratio(self) -> float:
        """Area over the extent's box: about 1 for a square, pi/4 for a circle, 1/2 for a triangle."""
        width, height = self.extent
        return self.area / max(width * height, 1e-9)


def chroma_and_hue(frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Chroma (max - min, 0-255) and hue in degrees [0, 360) of (..., 3) uint8 RGB pixels, as float32."""
    rgb = np.asarray(frames, dtype=np.float32)
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    high, low = np.maximum(np.maximum(r, g), b), np.minimum(np.minimum(r, g), b)
    chroma = high - low
    safe = np.maximum(chroma, 1e-6)
    hue = np.where(
        high == r, ((g - b) / safe) % 6, np.where(high == g, (b - r) / safe + 2, (r - g) / safe + 4)
    )
    return chroma, (60.0 * hue) % 360.0


def label_components(mask: np.ndarray, classes: np.ndarray | None = None) -> np.ndarray:
    """4-connected components of a (..., H, W) bool mask, labelled per (H, W) image.

    Neighbours join only when `classes` (same shape, ints) agree. Returns int64 labels: 0 off the mask,
    otherwise 1 + the flat index of the component's first pixel, so labels are unique across images.
    Vectorised min-label propagation with pointer jumping; fine for small frames.
    """
    mask = np.asarray(mask, dtype=bool)
    classes = np.zeros(mask.shape, dtype=np.int64) if classes is None else np.asarray(classes)
    none = np.iinfo(np.int64).max
    labels = np.where(mask, np.arange(1, mask.size + 1).reshape(mask.shape), none)
    joins = []
    for axis in (-1, -2):
        a = [slice(None)] * mask.ndim
        b = [slice(None)] * mask.ndim
        a[axis], b[axis] = slice(None, -1), slice(1, None)
        same = mask[tuple(a)] & mask[tuple(b)] & (classes[tuple(a)] == classes[tuple(b)])
        joins.append((tuple(a), tuple(b), same))
    while True:
        previous = labels
        labels = labels.copy()
        for a, b, same in joins:
            low = np.minimum(labels[a], labels[b])
            labels[a] = np.where(same, low, labels[a])
            labels[b] = np.where(same, np.minimum(low, labels[b]), labels[b])
        flat = labels.reshape(-1)
        on = flat != none
        flat[on] = flat[flat[on] - 1]  # pointer jumping: take the label of the pixel a label names
        if np.array_equal(labels, previous):
            break
    return np.where(mask, labels, 0)


def segment_frames(frames: np.ndarray) -> list[list[ObjectDetection]]:
    """Every coloured object in each of (F, H, W, 3) uint8 frames, largest first per frame."""
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"frames must be (F, H, W, 3) RGB, got shape {frames.shape}")
    chroma, hue = chroma_and_hue(frames)
    room_chroma = np.median(chroma.reshape(len(frames), -1), axis=1)  # (F,)
    candidate = chroma >= room_chroma[:, None, None] + MIN_CONTRAST
    color_index = np.rint(hue / HUE_STEP).astype(np.int64) % len(COLORS)
    labels = label_components(candidate, color_index)
    results: list[list[ObjectDetection]] = []
    for f in range(len(frames)):
        flat_labels = labels[f].reshape(-1)
        pixels = np.flatnonzero(flat_labels)
        ids, counts = np.unique(flat_labels[pixels], return_counts=True)
        detections = []
        for label in ids[np.argsort(-counts, kind="stable")]:
            core = pixels[flat_labels[pixels] == label]
            detection = _describe(core, flat_labels, label, chroma[f], float(room_chroma[f]), color_index[f])
            if detection is not None:
                detections.append(detection)
        results.append(_mark_touching(detections))
    return results


def _describe(
    core: np.ndarray,
    flat_labels: np.ndarray,
    label: int,
    chroma: np.ndarray,
    room_chroma: float,
    color_index: np.ndarray,
) -> ObjectDetection | None:
    """Coverage, mask and geometry of one candidate component, given as flat pixel indices `core`.

    The coverage extends over a one-pixel ring around the component (its anti-aliased edge), but never
    onto another component.
    """
    height, width = chroma.shape
    rows, cols = np.divmod(core, width)
    ring = [core]
    for dr, dc in ((1, 0), (-1, 0), (0, 1), (0, -1)):
        r, c = rows + dr, cols + dc
        inside = (r >= 0) & (r < height) & (c >= 0) & (c < width)
        ring.append(r[inside] * width + c[inside])
    region = np.unique(np.concatenate(ring))
    region = region[(flat_labels[region] == 0) | (flat_labels[region] == label)]
    flat_chroma = chroma.reshape(-1)
    object_chroma = float(np.percentile(flat_chroma[core], 75))
    values = np.clip((flat_chroma[region] - room_chroma) / max(object_chroma - room_chroma, 1.0), 0, 1)
    keep = values > 0
    region, values = region[keep], values[keep].astype(np.float64)
    area = float(values.sum())
    if area < MIN_AREA or not (values >= 0.5).any():
        return None
    coverage = np.zeros(height * width, dtype=np.float32)
    coverage[region] = values
    coverage = coverage.reshape(height, width)
    rows, cols = np.divmod(region, width)
    centroid = (float((values * (cols + 0.5)).sum() / area), float((values * (rows + 0.5)).sum() / area))
    solid = values >= 0.5
    x0, x1, y0, y1 = cols[solid].min(), cols[solid].max() + 1, rows[solid].min(), rows[solid].max() + 1
    classes = np.bincount(color_index.reshape(-1)[core], minlength=len(COLORS))
    return ObjectDetection(
        color=COLOR_AT_HUE_STEP[int(classes.argmax())],
        mask=coverage >= 0.5,
        coverage=coverage,
        centroid=centroid,
        area=area,
        bbox=(int(x0), int(y0), int(x1), int(y1)),
        extent=(float(coverage.max(axis=0).sum()), float(coverage.max(axis=1).sum())),
        **_cumulant_cues(values, cols + 0.5 - centroid[0], rows + 0.5 - centroid[1]),
        touches_border=bool(x0 == 0 or y0 == 0 or x1 == width or y1 == height),
    )


def _mark_touching(detections: list[ObjectDetection]) -> list[ObjectDetection]:
    """Set `touches_other` on detections whose grown footprint meets another's footprint."""
    footprints = [d.coverage > 0 for d in detections]
    marked = []
    for i, detection in enumerate(detections):
        grown = _dilate(footprints[i])
        touching = any((grown & other).any() for j, other in enumerate(footprints) if j != i)
        marked.append(dataclasses.replace(detection, touches_other=touching))
    return marked


def _cumulant_cues(weight: np.ndarray, dx: np.ndarray, dy: np.ndarray) -> dict[str, float]:
    """`asymmetry` and `corner_ratio` (see ObjectDetection) from pixels' coverage and centred positions."""
    area = weight.sum()

    def cumulants(u: np.ndarray) -> tuple[float, float]:
        u2 = u * u
        m2, m3, m4 = (
            (weight * u2).sum() / area,
            (weight * u2 * u).sum() / area,
            (weight * u2 * u2).sum() / area,
        )
        return m3, m4 - 3 * m2 * m2

    (k3x, k4x), (k3y, k4y) = cumulants(dx), cumulants(dy)
    k4u, k4v = cumulants((dx + dy) / np.sqrt(2))[1], cumulants((dx - dy) / np.sqrt(2))[1]
    diagonal = k4u + k4v
    return {
        "asymmetry": float(np.hypot(k3x, k3y) / area**1.5),
        "corner_ratio": float((k4x + k4y) / diagonal) if diagonal < 0 else float("nan"),
    }


def _dilate(mask: np.ndarray) -> np.ndarray:
    """4-neighbour dilation by one pixel."""
    out = mask.copy()
    out[1:] |= mask[:-1]
    out[:-1] |= mask[1:]
    out[:, 1:] |= mask[:, :-1]
    out[:, :-1] |= mask[:, 1:]
    return out
