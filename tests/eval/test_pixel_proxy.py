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


def test_image_scores_and_contact_sheet_from_a_pipeline_folder(tmp_path):
    """`eval --task t2i` loads an export, draws one image per suite seed and scores its main object."""
    import dataclasses

    from PIL import Image

    from omni.pipelines.presets import build_pipeline, load_preset

    proxy = load()
    preset = load_preset("tiny")
    transformer = {**preset.transformer, "in_channels": proxy.CHANNELS, "out_channels": proxy.CHANNELS}
    vae = {  # the toy VAE's layout, which the pixel map stands in for: 8 channels, 2x in time and space
        **preset.vae,
        **dict(z_dim=8, latents_mean=[0.0] * 8, latents_std=[1.0] * 8, dim_mult=[1, 2]),
        **dict(temperal_downsample=[True], scale_factor_temporal=2, scale_factor_spatial=2),
    }
    preset = dataclasses.replace(preset, transformer=transformer, vae=vae)
    build_pipeline(preset, seed=0).save_pretrained(tmp_path / "export")
    scores = proxy.score_images(
        str(tmp_path / "export"), seeds=8, first_seed=10_000, sheet=str(tmp_path / "s.png"),
        guidance_scale=1.0, num_inference_steps=2,
    )  # fmt: skip
    assert set(scores) == {"color_accuracy", "shape_accuracy"}
    assert 0.0 <= scores["shape_accuracy"] <= scores["color_accuracy"] <= 1.0  # a shape counts only in colour
    assert Image.open(tmp_path / "s.png").size == (8 * 64, 64)
