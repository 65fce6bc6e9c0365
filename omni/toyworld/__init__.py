"""A procedural audio-visual world, deterministic from a seed, where every capability has ground truth.

Clips are small rooms with one or two coloured shapes that move and beep when they hit a wall:
`sample_scene(seed)` draws a `SceneSpec`, `render(scene)` turns it into frames, audio, a caption and
ground truth, and `render_to_files` writes `<stem>.mp4` + `<stem>.json`.
"""

from omni.toyworld.captions import canonical_caption, caption
from omni.toyworld.clip import ToyClip, prepare_clips, render, render_to_files
from omni.toyworld.groundtruth import GroundTruth, ObjectTruth
from omni.toyworld.motion import Bounce, bounces, camera_offsets, frame_times, view_positions
from omni.toyworld.render import object_masks
from omni.toyworld.sampling import sample_scene
from omni.toyworld.spec import (
    AMBIENTS,
    BACKDROPS,
    BOUNCING_MOTIONS,
    COLORS,
    HUE_OF_COLOR,
    MOTIONS,
    PITCH_OF_COLOR,
    RGB_OF_COLOR,
    RGB_OF_ROOM,
    ROOMS,
    SHAPES,
    SIZES,
    WALLS,
    ObjectSpec,
    SceneSpec,
)

__all__ = [
    "AMBIENTS",
    "BACKDROPS",
    "BOUNCING_MOTIONS",
    "COLORS",
    "HUE_OF_COLOR",
    "MOTIONS",
    "PITCH_OF_COLOR",
    "RGB_OF_COLOR",
    "RGB_OF_ROOM",
    "ROOMS",
    "SHAPES",
    "SIZES",
    "WALLS",
    "Bounce",
    "GroundTruth",
    "ObjectSpec",
    "ObjectTruth",
    "SceneSpec",
    "ToyClip",
    "prepare_clips",
    "bounces",
    "camera_offsets",
    "canonical_caption",
    "caption",
    "frame_times",
    "object_masks",
    "render",
    "render_to_files",
    "sample_scene",
    "view_positions",
]
