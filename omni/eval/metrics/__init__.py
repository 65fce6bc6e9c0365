"""Weights-free metrics for any media file: audio-video sync, motion and flicker, loudness, request
compliance and content credentials. Plain functions on decoded arrays (`omni.media.read_video`), so they
score omni's outputs and any other system's alike."""

from omni.eval.metrics.compliance import Request, Tolerances, check_compliance
from omni.eval.metrics.credentials import content_credentials
from omni.eval.metrics.loudness import (
    Biquad,
    channel_weights,
    clipping_ratio,
    integrated_loudness,
    k_weighted,
    k_weighting,
    peak_dbfs,
    silence_ratio,
)
from omni.eval.metrics.signals import Envelope, directogram, motion_change_envelope, onset_strength
from omni.eval.metrics.sync import CONFIDENCE_THRESHOLD, SyncEstimate, av_sync
from omni.eval.metrics.temporal import TemporalStats, temporal_stats

__all__ = [
    "CONFIDENCE_THRESHOLD",
    "Biquad",
    "Envelope",
    "Request",
    "SyncEstimate",
    "TemporalStats",
    "Tolerances",
    "av_sync",
    "channel_weights",
    "check_compliance",
    "clipping_ratio",
    "content_credentials",
    "directogram",
    "integrated_loudness",
    "k_weighted",
    "k_weighting",
    "motion_change_envelope",
    "onset_strength",
    "peak_dbfs",
    "silence_ratio",
    "temporal_stats",
]
