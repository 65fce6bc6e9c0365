"""Weights-free detectors for toy-world clips and the metric primitives built on them.

Colour segmentation finds the objects (`track_objects`), their silhouettes give shape and size, their
camera-compensated tracks give the motion class and visual bounce times; onset detection and an FFT
peak find the beeps and their colours; `match_events` and `score_clip` turn these into numbers.
"""

from omni.toyworld.detectors.audio import (
    Beep,
    band_envelope,
    color_of_pitch,
    detect_beeps,
    detect_onsets,
    estimate_pitch,
)
from omni.toyworld.detectors.camera import estimate_camera_offsets
from omni.toyworld.detectors.metrics import EventMatching, match_events, pitch_color_agreement, score_clip
from omni.toyworld.detectors.motion import VisualBounce, classify_motion, fit_circle, visual_bounces
from omni.toyworld.detectors.segment import ObjectDetection, chroma_and_hue, label_components, segment_frames
from omni.toyworld.detectors.shape import classify_shape, classify_size, track_shape, track_size
from omni.toyworld.detectors.tracks import ColorTrack, TrackedClip, track_objects

__all__ = [
    "Beep",
    "ColorTrack",
    "EventMatching",
    "ObjectDetection",
    "TrackedClip",
    "VisualBounce",
    "band_envelope",
    "chroma_and_hue",
    "classify_motion",
    "classify_shape",
    "classify_size",
    "color_of_pitch",
    "detect_beeps",
    "detect_onsets",
    "estimate_camera_offsets",
    "estimate_pitch",
    "fit_circle",
    "label_components",
    "match_events",
    "pitch_color_agreement",
    "score_clip",
    "segment_frames",
    "track_objects",
    "track_shape",
    "track_size",
    "visual_bounces",
]
