"""scripts/pixel_proxy.py: pixels in the toy VAE's latent layout, decoded back exactly enough to score."""

import numpy as np

from omni.data.toyworld import render, sample_scene
from tests.helpers import load_script


def load():
    return load_script("pixel_proxy")


def test_pixels_take_the_toy_vae_layout_and_decode_back():
    proxy = load()
    frames = render(sample_scene(0, num_frames=33)).frames
    latents = proxy.encode(frames)
    assert tuple(latents.shape) == (1, 8, 17, 32, 32)  # the toy VAE's: 2x in time and space, 8 channels
    assert 0.3 < float(latents.std()) < 3.0  # about unit variance, as normalised latents are
    decoded = proxy.decode(latents)[0]
    assert decoded.shape == frames.shape
    # exact up to the pooling: the first frame, a 2x2 average of each pixel's block
    pooled = frames[0].reshape(32, 2, 32, 2, 3).astype(np.float64).mean((1, 3))
    assert np.abs(decoded[0, ::2, ::2].astype(np.float64) - pooled).max() <= 1.0


def test_the_pipeline_encodes_and_decodes_through_the_map(tiny_pipeline):
    proxy = load()
    frames = render(sample_scene(1, num_frames=9)).frames
    pipe = proxy.on_pixels(tiny_pipeline)
    try:
        np.testing.assert_array_equal(pipe.encode_video(frames).numpy(), proxy.encode(frames).numpy())
        assert pipe.decode_video(pipe.encode_video(frames)).shape == (1, 9, 64, 64, 3)
    finally:
        del pipe.encode_video, pipe.decode_video  # the fixture is shared: back to its own VAE
