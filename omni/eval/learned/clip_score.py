"""Text-video agreement: cosine similarity of CLIP or SigLIP embeddings of the prompt and of sampled frames."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from omni.eval.harness.decoded import DecodedMedia
from omni.eval.harness.suite import SuiteItem
from omni.eval.learned.base import (
    LearnedMetric,
    check_model_type,
    load_pretrained,
    pooled,
    text_inputs,
)
from omni.media.video import spread_indices

FRAMES = 8  # frames sampled evenly over the clip


class TextVideoScore(LearnedMetric):
    """`clip_score`: 100 x the mean cosine similarity between the prompt and FRAMES evenly sampled frames
    (the CLIPSIM of text-to-video papers); with several shots, each shot's frames against its own prompt."""

    name = "clip"

    def __init__(self, model, tokenizer, image_processor, device: str = "cpu"):
        self.model = model.to(device).eval()
        self.tokenizer = tokenizer
        self.image_processor = image_processor
        self.device = device
        config = model.config.text_config
        self.max_tokens = getattr(config, "max_position_embeddings", 77)

    @classmethod
    def from_folder(cls, folder: str | Path, device: str = "cpu") -> TextVideoScore:
        """Load a CLIPModel or SiglipModel folder (by its config's model_type) with its tokenizer and processor."""
        from transformers import AutoImageProcessor, AutoTokenizer, CLIPModel, SiglipModel

        model_class = {"clip": CLIPModel, "siglip": SiglipModel}[
            check_model_type(folder, "clip", ("clip", "siglip"))
        ]
        return cls(
            load_pretrained(model_class, folder, "clip"),
            load_pretrained(AutoTokenizer, folder, "clip tokenizer"),
            load_pretrained(AutoImageProcessor, folder, "clip image processor"),
            device,
        )

    @torch.no_grad()
    def item_metrics(self, item: SuiteItem, output: DecodedMedia) -> dict[str, float]:
        if output.frames is None:
            return {}
        prompts = item.prompts
        shots = np.array_split(np.arange(len(output.frames)), len(prompts))
        scores = []
        for prompt, shot in zip(prompts, shots):
            if shot.size == 0:
                continue
            frames = output.frames[shot[spread_indices(shot.size, FRAMES)]]
            scores.append(self.similarity(prompt, frames))
        return {"clip_score": 100 * float(np.mean(scores))}

    def similarity(self, prompt: str, frames: np.ndarray) -> float:
        """Mean cosine similarity of `prompt` with each of (F, H, W, 3) uint8 `frames`."""
        pixels = self.image_processor(images=list(frames), return_tensors="pt")["pixel_values"]
        text = self.tokenizer(
            [prompt], padding="max_length", truncation=True, max_length=self.max_tokens, return_tensors="pt"
        )
        image_embedding = pooled(self.model.get_image_features(pixel_values=pixels.to(self.device)))
        text_embedding = pooled(self.model.get_text_features(**text_inputs(text, self.device)))
        image_embedding = torch.nn.functional.normalize(image_embedding.float(), dim=-1)
        text_embedding = torch.nn.functional.normalize(text_embedding.float(), dim=-1)
        return float((image_embedding @ text_embedding.T).mean())
