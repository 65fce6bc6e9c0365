"""Learned metrics, each a plugin that runs only when its weights are in a local folder: CLIP / SigLIP
text-video score, DINO subject consistency, CLAP text-audio score and FVD (I3D + Fréchet distance)."""

from omni.eval.learned.base import (
    LearnedMetric,
    MetricUnavailable,
    MetricWeights,
    load_learned_metrics,
    locate_weights,
)
from omni.eval.learned.fvd import FrechetVideoDistance, frechet_distance, gaussian_fit
from omni.eval.learned.i3d import InceptionI3d

__all__ = [
    "FrechetVideoDistance",
    "InceptionI3d",
    "LearnedMetric",
    "MetricUnavailable",
    "MetricWeights",
    "frechet_distance",
    "gaussian_fit",
    "load_learned_metrics",
    "locate_weights",
]
