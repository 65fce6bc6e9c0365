"""A converted Wan folder runs through omni as diffusers runs it: final latents equal `WanPipeline`'s and
`WanImageToVideoPipeline`'s (Wan 2.2 TI2V) for the same prompt, noise, scheduler, steps and guidance."""

import numpy as np
import pytest
import torch
from diffusers import WanImageToVideoPipeline
from PIL import Image

from omni.cli import main
from omni.pipelines.pipeline_omni import OmniPipeline
from tests.helpers import WAN_LAYOUTS

STEPS, GUIDANCE = 4, 5.0
PROMPT = "a red &amp; blue   ball\n bouncing "  # diffusers unescapes and collapses whitespace: so must omni
TOLERANCE = 1e-4


@pytest.fixture(scope="module")
def pipelines(wan_folders):
    loaded = {}

    def get(layout):
        if layout not in loaded:
            wan, _, folder = wan_folders(layout)
            loaded[layout] = (wan, OmniPipeline.from_pretrained(folder))
        return loaded[layout]

    return get


def geometry(pipe):
    """A small clip: 9 frames (3 latent frames) of 2x3 tokens, and seeded starting noise for it."""
    size = pipe.pixels_per_token
    height, width = 2 * size, 3 * size
    spatial = pipe.vae.config.scale_factor_spatial
    shape = (1, pipe.transformer.config.in_channels, 3, height // spatial, width // spatial)
    noise = torch.randn(shape, generator=torch.Generator().manual_seed(1))
    return dict(
        height=height, width=width, num_frames=9, num_inference_steps=STEPS, guidance_scale=GUIDANCE
    ), noise


@pytest.mark.parametrize("layout", WAN_LAYOUTS)
def test_text_to_video_latents_equal_wan_pipeline(pipelines, layout):
    wan, pipe = pipelines(layout)
    args, noise = geometry(pipe)
    if layout == "wan2.2-a14b":
        args["guidance_scale_2"] = 3.0  # the low-noise expert's own guidance
    expected = wan(PROMPT, latents=noise.clone(), output_type="latent", **args).frames
    got = pipe(PROMPT, "t2v", latents=noise.clone(), progress=False, **args).latents
    assert (expected - noise).abs().max() > 1.0  # the models did move the sample
    assert (got - expected).abs().max() <= TOLERANCE


def test_a14b_switches_experts_within_the_run(pipelines):
    wan, pipe = pipelines("wan2.2-a14b")
    scheduler = pipe.scheduler
    scheduler.set_timesteps(STEPS)
    boundary = pipe.config.boundary_ratio * scheduler.config.num_train_timesteps
    assert (scheduler.timesteps >= boundary).any() and (scheduler.timesteps < boundary).any()
    args, noise = geometry(pipe)
    both = pipe(PROMPT, "t2v", latents=noise.clone(), progress=False, **args).latents
    low_noise_expert = pipe.transformer_2
    pipe.transformer_2 = pipe.transformer
    try:
        high_only = pipe(PROMPT, "t2v", latents=noise.clone(), progress=False, **args).latents
    finally:
        pipe.transformer_2 = low_noise_expert
    assert (high_only - both).abs().max() > 0.1


def test_wan_21_decoded_frames_equal_wan_pipeline(pipelines):
    wan, pipe = pipelines("wan2.1-t2v")
    args, noise = geometry(pipe)
    expected = wan(PROMPT, latents=noise.clone(), output_type="np", **args).frames[
        0
    ]  # (F, H, W, 3) in [0, 1]
    got = pipe(PROMPT, "t2v", latents=noise.clone(), progress=False, **args).frames[0]
    assert np.abs(got.astype(np.float32) - expected * 255).max() <= 1.0  # uint8 rounding


def test_unmasked_text_padding_is_what_makes_them_equal(pipelines):
    wan, pipe = pipelines("wan2.1-t2v")
    args, noise = geometry(pipe)
    expected = wan(PROMPT, latents=noise.clone(), output_type="latent", **args).frames
    pipe.transformer.register_to_config(mask_text_padding=True)
    try:
        masked = pipe(PROMPT, "t2v", latents=noise.clone(), progress=False, **args).latents
    finally:
        pipe.transformer.register_to_config(mask_text_padding=False)
    assert (masked - expected).abs().max() > 100 * TOLERANCE


def test_ti2v_image_to_video_equals_wan_image_to_video_pipeline(pipelines):
    """Wan 2.2 TI2V's i2v: a clean first latent frame at timestep 0, per-token timesteps; no audio tokens."""
    wan, pipe = pipelines("wan2.2-ti2v")
    args, noise = geometry(pipe)
    image = np.random.default_rng(0).integers(0, 256, (args["height"], args["width"], 3), dtype=np.uint8)
    reference = WanImageToVideoPipeline(
        tokenizer=wan.tokenizer,
        text_encoder=wan.text_encoder,
        vae=wan.vae,
        scheduler=wan.scheduler,
        transformer=wan.transformer,
        expand_timesteps=True,
    )
    # diffusers' image-to-video prompt cleaning needs ftfy; embeddings sidestep it, in both pipelines.
    embeds, negative = wan.encode_prompt(PROMPT, "", max_sequence_length=512)
    expected = reference(
        Image.fromarray(image),
        prompt_embeds=embeds,
        negative_prompt_embeds=negative,
        latents=noise.clone(),
        output_type="latent",
        **args,
    ).frames
    out = pipe(
        None,
        "i2v",
        image=image,
        prompt_embeds=embeds,
        negative_prompt_embeds=negative,
        latents=noise.clone(),
        progress=False,
        **args,
    )
    assert (out.latents - expected).abs().max() <= TOLERANCE
    assert out.audio is None and out.frames.shape[1] == 9
    from_prompt = pipe(PROMPT, "i2v", image=image, latents=noise.clone(), progress=False, **args).latents
    assert (from_prompt - expected).abs().max() <= TOLERANCE


def test_generate_from_a_converted_folder_writes_the_clip(wan_folders, tmp_path, capsys):
    _, _, folder = wan_folders("wan2.1-t2v")
    out = tmp_path / "clip.mp4"
    argv = ["generate", "--model", str(folder), "--task", "t2v", "--prompt", "a ball", "--size", "48x32"]
    assert main([*argv, "--frames", "9", "--steps", "2", "--out", str(out)]) == 0
    assert "9 frames 48x32 @ 16 fps, no audio" in capsys.readouterr().out and out.stat().st_size > 0


def test_generate_on_a_raw_wan_folder_says_to_convert_it(wan_folders, capsys):
    _, wan_folder, _ = wan_folders("wan2.1-t2v")
    assert main(["generate", "--model", str(wan_folder), "--task", "t2v", "--prompt", "a ball"]) == 2
    error = capsys.readouterr().err
    assert "this is a diffusers Wan folder (WanPipeline)" in error and "omni convert --from wan" in error


def test_a_seed_draws_the_noise_a_seeded_diffusers_generator_draws(pipelines):
    """`omni generate --seed S` equals diffusers' run with torch.Generator().manual_seed(S)."""
    wan, pipe = pipelines("wan2.1-t2v")
    args, _ = geometry(pipe)
    expected = wan(PROMPT, generator=torch.Generator().manual_seed(7), output_type="latent", **args).frames
    assert (pipe(PROMPT, "t2v", seed=7, progress=False, **args).latents - expected).abs().max() <= TOLERANCE
