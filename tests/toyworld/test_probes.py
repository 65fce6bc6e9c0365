"""The readouts the probing tools take from x_0 estimates (omni.toyworld.probes)."""

import numpy as np

from omni.toyworld.probes import colour_centroids, colour_extent, colour_share, object_colour, room_colour

ROOM = np.array([90, 90, 100])
RED = np.array([220, 30, 30])


def clip_of(path, radius=4, frames=8, tint=1.0):
    """(F, 64, 64, 3) uint8 frames of a red disc at path(i) on a grey room, mixed `tint` of the way to red."""
    rows, cols = np.mgrid[0:64, 0:64] + 0.5
    clip = np.broadcast_to(ROOM, (frames, 64, 64, 3)).astype(float).copy()
    for i in range(frames):
        x, y = path(i)
        clip[i][(cols - x) ** 2 + (rows - y) ** 2 <= radius**2] = ROOM + tint * (RED - ROOM)
    return clip.round().astype(np.uint8)


def test_a_track_and_its_extent_follow_the_object():
    """A disc that moves left to right: its centroids follow it; it lies wider along x than along y."""
    clip = clip_of(lambda i: (10 + 6 * i, 32))
    assert np.allclose(object_colour(clip), RED, atol=1)
    assert np.allclose(room_colour(clip), ROOM)
    centroids = colour_centroids(clip, RED)
    assert np.allclose(centroids[:, 0], 10 + 6 * np.arange(8), atol=0.5)
    assert np.allclose(centroids[:, 1], 32, atol=0.5)
    sx, sy = colour_extent(clip, RED, ROOM)
    assert sx > 10 > sy


def test_a_faint_tint_counts_as_much_as_it_holds():
    """An x_0 that averages over places shows the object as a faint tint: its share is the tint, and its
    extent is that of a full-strength object on the same path."""
    faint = clip_of(lambda i: (32, 10 + 6 * i), tint=0.25)
    share = colour_share(faint, RED, ROOM)
    assert np.isclose(share.max(), 0.25, atol=0.01) and share.min() == 0
    full = clip_of(lambda i: (32, 10 + 6 * i))
    assert np.allclose(colour_extent(faint, RED, ROOM), colour_extent(full, RED, ROOM), atol=0.1)
    assert np.isnan(colour_extent(clip_of(lambda i: (32, 32), radius=0), RED, ROOM)).all()
