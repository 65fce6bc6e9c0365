"""Learned metrics, each a plugin that runs only when its weights are in a local folder: CLIP / SigLIP
text-video score, DINO subject consistency, CLAP text-audio score and FVD (I3D + Fréchet distance)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from omni.eval.learned.base import LearnedMetric, MetricUnavailable, MetricWeights, locate_weights
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


def load_learned_metrics(
    source: str | Path | None, device: str = "cpu"
) -> tuple[list[LearnedMetric], dict[str, str]]:
    """The plugins whose weights are present, and {name: one-line reason} for those that are not."""
    from omni.eval.learned.clap import TextAudioScore
    from omni.eval.learned.clip_score import TextVideoScore
    from omni.eval.learned.dino import SubjectConsistency

    weights = locate_weights(source)
    loaders: dict[str, Callable[[str, str], LearnedMetric]] = {
        "clip": TextVideoScore.from_folder,
        "dino": SubjectConsistency.from_folder,
        "clap": TextAudioScore.from_folder,
        "i3d": FrechetVideoDistance.from_folder,
    }
    plugins, unavailable = [], {}
    for name, load in loaders.items():
        folder = getattr(weights, name)
        if folder is None:
            where = f" (looked for {Path(source) / name})" if source and Path(source).is_dir() else ""
            unavailable[name] = f"no weights given{where}"
            continue
        try:
            plugins.append(load(folder, device))
        except MetricUnavailable as error:
            unavailable[name] = str(error)
    return plugins, unavailable
