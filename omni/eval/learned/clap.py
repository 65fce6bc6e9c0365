"""Text-audio agreement: cosine similarity of CLAP embeddings of the prompt and of the soundtrack."""

from __future__ import annotations

from pathlib import Path

import torch

from omni.eval.harness.decoded import DecodedMedia
from omni.eval.harness.suite import SuiteItem
from omni.eval.learned.base import LearnedMetric, check_model_type, load_pretrained, pooled, text_inputs
from omni.eval.metrics.signals import mono
from omni.media import resample


class TextAudioScore(LearnedMetric):
    """`clap_score`: 100 x the cosine similarity between the prompt and the whole soundtrack (mono mix,
    resampled to the feature extractor's rate) under a ClapModel; several shots' prompts are joined."""

    name = "clap"

    def __init__(self, model, tokenizer, feature_extractor, device: str = "cpu"):
        self.model = model.to(device).eval()
        self.tokenizer = tokenizer
        self.feature_extractor = feature_extractor
        self.device = device

    @classmethod
    def from_folder(cls, folder: str | Path, device: str = "cpu") -> TextAudioScore:
        from transformers import AutoFeatureExtractor, AutoTokenizer, ClapModel

        check_model_type(folder, "clap", ("clap",))
        return cls(
            load_pretrained(ClapModel, folder, "clap"),
            load_pretrained(AutoTokenizer, folder, "clap tokenizer"),
            load_pretrained(AutoFeatureExtractor, folder, "clap feature extractor"),
            device,
        )

    @torch.no_grad()
    def item_metrics(self, item: SuiteItem, output: DecodedMedia) -> dict[str, float]:
        if output.audio is None or output.audio.shape[-1] == 0:
            return {}
        rate = self.feature_extractor.sampling_rate
        audio = resample(mono(output.audio), output.sample_rate, rate)
        features = self.feature_extractor(audio, sampling_rate=rate, return_tensors="pt")
        text = self.tokenizer([" ".join(item.prompts)], padding=True, truncation=True, return_tensors="pt")
        audio_embedding = pooled(
            self.model.get_audio_features(**{k: v.to(self.device) for k, v in features.items()})
        )
        text_embedding = pooled(self.model.get_text_features(**text_inputs(text, self.device)))
        similarity = torch.nn.functional.cosine_similarity(audio_embedding.float(), text_embedding.float())
        return {"clap_score": 100 * float(similarity.mean())}
