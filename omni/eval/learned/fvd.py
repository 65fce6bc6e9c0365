"""Fréchet Video Distance: the Fréchet distance between Gaussians fitted to I3D features of two sets of clips.

Following Unterthiner et al. (2018): 16 frames at 224 x 224 in [-1, 1] through Kinetics-400 I3D, the 400
logits as features. Here the 16 frames are the clip's first 16 (a shorter clip repeats its last frame).
FVD is a set statistic: each system is compared with a reference system (real or ground-truth clips).
With few clips per set it is strongly biased upward; compare systems only on the same suite.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from omni.eval.harness.decoded import DecodedMedia
from omni.eval.harness.suite import SuiteItem
from omni.eval.learned.base import LearnedMetric, MetricUnavailable
from omni.eval.learned.i3d import InceptionI3d

CLIP_FRAMES = 16
SIZE = 224
WEIGHTS_FILE = "model.safetensors"


def frechet_distance(mean_a: np.ndarray, cov_a: np.ndarray, mean_b: np.ndarray, cov_b: np.ndarray) -> float:
    """||mu_a - mu_b||^2 + tr(S_a) + tr(S_b) - 2 tr((S_a S_b)^(1/2)) for Gaussians N(mu, S).

    The trace of the matrix square root is computed as the sum of square roots of the eigenvalues of the
    symmetric S_a^(1/2) S_b S_a^(1/2) (which has the same spectrum as S_a S_b), in float64, with tiny
    negative eigenvalues from rounding clipped to zero: no scipy, and no complex parts to discard.
    """
    mean_a, mean_b = np.asarray(mean_a, np.float64), np.asarray(mean_b, np.float64)
    cov_a, cov_b = np.asarray(cov_a, np.float64), np.asarray(cov_b, np.float64)
    if mean_a.shape != mean_b.shape or cov_a.shape != cov_b.shape or cov_a.shape != mean_a.shape * 2:
        raise ValueError(
            f"shapes do not match: means {mean_a.shape} {mean_b.shape}, covariances {cov_a.shape} {cov_b.shape}"
        )
    root_a = _psd_sqrt(cov_a)
    cross = np.linalg.eigvalsh(root_a @ cov_b @ root_a)
    trace_sqrt = np.sqrt(np.clip(cross, 0, None)).sum()
    difference = mean_a - mean_b
    distance = difference @ difference + np.trace(cov_a) + np.trace(cov_b) - 2 * trace_sqrt
    return float(max(distance, 0.0))  # a distance; identical sets can round to a hair below zero


def gaussian_fit(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and (unbiased) covariance of (N, D) features, N >= 2."""
    features = np.asarray(features, np.float64)
    if features.ndim != 2 or len(features) < 2:
        raise ValueError(f"need (N, D) features with N >= 2, got shape {features.shape}")
    return features.mean(axis=0), np.cov(features, rowvar=False)


def _psd_sqrt(matrix: np.ndarray) -> np.ndarray:
    values, vectors = np.linalg.eigh((matrix + matrix.T) / 2)
    return (vectors * np.sqrt(np.clip(values, 0, None))) @ vectors.T


class FrechetVideoDistance(LearnedMetric):
    """`fvd` of each system against the reference system, from I3D logits of every scored video."""

    name = "i3d"

    def __init__(self, model: InceptionI3d, device: str = "cpu", size: int = SIZE):
        self.model = model.to(device).eval()
        self.device = device
        self.size = size  # frames are resized to size x size (224 is FVD's; tests use less)

    @classmethod
    def from_folder(cls, folder: str | Path, device: str = "cpu") -> FrechetVideoDistance:
        """Load `<folder>/model.safetensors` (an `InceptionI3d` state dict; the class count is read from it)."""
        from safetensors.torch import load_file

        path = Path(folder) / WEIGHTS_FILE
        if not path.is_file():
            raise MetricUnavailable(f"i3d: no {WEIGHTS_FILE} in {folder}")
        try:
            state = load_file(path)
        except Exception as error:  # safetensors raises its own error types for damaged files
            raise MetricUnavailable(f"i3d: cannot read {path}: {error}") from error
        if "logits.conv3d.weight" not in state:
            raise MetricUnavailable(
                f"i3d: {path} is not an InceptionI3d state dict (no logits.conv3d.weight)"
            )
        model = InceptionI3d(num_classes=state["logits.conv3d.weight"].shape[0])
        missing, unexpected = model.load_state_dict(state, strict=False)
        # Checkpoints saved by older PyTorch lack BatchNorm's num_batches_tracked, which inference never reads.
        missing = [k for k in missing if not k.endswith("num_batches_tracked")]
        if missing or unexpected:
            raise MetricUnavailable(
                f"i3d: {path} does not fit InceptionI3d: missing {missing[:3]}, unexpected {unexpected[:3]}"
            )
        return cls(model, device)

    @torch.no_grad()
    def item_features(self, item: SuiteItem, output: DecodedMedia) -> np.ndarray | None:
        if output.frames is None or output.is_image:
            return None
        frames = output.frames[:CLIP_FRAMES]
        if len(frames) < CLIP_FRAMES:
            frames = np.concatenate([frames, np.repeat(frames[-1:], CLIP_FRAMES - len(frames), axis=0)])
        video = torch.from_numpy(frames).to(self.device).permute(3, 0, 1, 2).float()  # (3, T, H, W)
        video = F.interpolate(
            video, size=(self.size, self.size), mode="bilinear", align_corners=False, antialias=True
        )
        video = video / 127.5 - 1
        return self.model(video[None])[0].cpu().numpy().astype(np.float64)

    def set_metrics(self, features: dict[str, list[np.ndarray]], reference: str | None) -> dict[str, dict]:
        if reference is None or len(features.get(reference, [])) < 2:
            return {}
        mean_ref, cov_ref = gaussian_fit(np.stack(features[reference]))
        results = {}
        for system, vectors in features.items():
            if len(vectors) >= 2:
                mean, cov = gaussian_fit(np.stack(vectors))
                results[system] = {
                    "fvd": frechet_distance(mean, cov, mean_ref, cov_ref),
                    "fvd_clips": len(vectors),
                }
        return results
