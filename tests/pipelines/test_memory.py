"""Requests that would not fit in memory are refused up front, with the estimate and what would fit."""

import pytest
import torch

from omni.pipelines.memory import estimate_bytes


def test_estimates_grow_with_duration_and_size(tiny_pipeline):
    short = sum(estimate_bytes(tiny_pipeline, 33, 64, 64, 2.0, 2).values())
    long = sum(estimate_bytes(tiny_pipeline, 129, 64, 64, 8.0, 2).values())
    large = sum(estimate_bytes(tiny_pipeline, 33, 256, 256, 2.0, 2).values())
    assert short < long and short < large


def test_too_large_requests_are_refused_before_allocating(tiny_pipeline, monkeypatch):
    monkeypatch.setenv("OMNI_MEMORY_LIMIT_GB", "0.012")
    with pytest.raises(
        MemoryError, match=r"needs about .* free; at 64x64 about [0-9.]+ s \([0-9]+ frames\) fits"
    ):
        tiny_pipeline("x", task="t2av", seconds=8.0, num_inference_steps=1, progress=False)
    out = tiny_pipeline("x", task="t2av", seconds=1.0, num_inference_steps=1, progress=False)
    assert out.frames.shape[1] == 16


@pytest.mark.slow
def test_large_frames_decode_in_tiles(tiny_pipeline):
    small = tiny_pipeline.decode_video(torch.zeros(1, 4, 1, 8, 8))
    assert small.shape == (1, 1, 64, 64, 3) and not tiny_pipeline.vae.use_tiling
    large = tiny_pipeline.decode_video(torch.zeros(1, 4, 1, 72, 72))  # 576 x 576 frames
    assert large.shape == (1, 1, 576, 576, 3) and tiny_pipeline.vae.use_tiling
    tiny_pipeline.decode_video(torch.zeros(1, 4, 1, 8, 8))
    assert not tiny_pipeline.vae.use_tiling
