"""Subject consistency: how alike a clip's frames stay, by DINO features (VBench's definition)."""

from __future__ import annotations

from pathlib import Path

import torch

from omni.eval.harness.decoded import DecodedMedia
from omni.eval.harness.suite import SuiteItem
from omni.eval.learned.base import LearnedMetric, check_model_type, load_pretrained
from omni.media.video import spread_indices

MAX_FRAMES = 32  # longer clips are sampled evenly down to this many frames


class SubjectConsistency(LearnedMetric):
    """`dino_subject_consistency`: mean over frames t >= 1 of (cos(f_t, f_0) + cos(f_t, f_t-1)) / 2, where
    f is the image-level ([CLS]) feature of a Dinov2Model or ViTModel. 1 for a still clip."""

    name = "dino"

    def __init__(self, model, image_processor, device: str = "cpu"):
        self.model = model.to(device).eval()
        self.image_processor = image_processor
        self.device = device

    @classmethod
    def from_folder(cls, folder: str | Path, device: str = "cpu") -> SubjectConsistency:
        """Load a Dinov2Model or ViTModel folder (AutoModel picks the class) with its image processor."""
        from transformers import AutoImageProcessor, AutoModel

        check_model_type(folder, "dino", ("dinov2", "dinov2_with_registers", "vit"))
        return cls(
            load_pretrained(AutoModel, folder, "dino"),
            load_pretrained(AutoImageProcessor, folder, "dino image processor"),
            device,
        )

    @torch.no_grad()
    def item_metrics(self, item: SuiteItem, output: DecodedMedia) -> dict[str, float]:
        if output.frames is None or len(output.frames) < 2:
            return {}
        frames = output.frames[spread_indices(len(output.frames), MAX_FRAMES)]
        pixels = self.image_processor(images=list(frames), return_tensors="pt")["pixel_values"]
        features = self.model(pixel_values=pixels.to(self.device)).last_hidden_state[:, 0]  # (F, D) [CLS]
        features = torch.nn.functional.normalize(features.float(), dim=-1)
        to_first = features[1:] @ features[0]
        to_previous = (features[1:] * features[:-1]).sum(dim=-1)
        return {"dino_subject_consistency": float(((to_first + to_previous) / 2).mean())}
