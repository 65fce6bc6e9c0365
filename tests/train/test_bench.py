"""`omni bench train`'s synthetic latents have the shapes the preset's codecs produce."""

import pytest
import torch

from omni.pipelines.presets import build_pipeline, load_preset
from omni.train.bench import synthetic_batch


@pytest.mark.parametrize("preset", ["tiny", "toy"])
def test_synthetic_video_latents_match_the_vae(preset):
    cfg = load_preset(preset)
    batch = synthetic_batch(cfg, 1, 33, 64, 64, 0.0, torch.device("cpu"))
    with torch.no_grad():
        encoded = build_pipeline(cfg, seed=0).vae.encode(torch.zeros(1, 3, 33, 64, 64)).latent_dist.mode()
    assert batch.video.shape == encoded.shape
